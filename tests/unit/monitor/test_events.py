"""AMI events and action responses captured from Asterisk 22 -> the monitor's changes and snapshots."""

from __future__ import annotations

import json

import pytest
from registration_monitor.events import (
    ActionError,
    ContactChange,
    RegistryChange,
    contacts_from_show_aors,
    contacts_from_show_contacts,
    dn_from_aor,
    dn_from_uri,
    parse,
    parse_change,
    registrations_from_show_outbound,
    to_log_event,
)

from .captured import AMI_FIXTURES, MANIFEST, ami_fixture

SYNC_FIXTURES = [name for name in AMI_FIXTURES if "sync" in name]


def changes(name: str) -> list[ContactChange | RegistryChange]:
    return [change for event in ami_fixture(name).events if (change := parse_change(event)) is not None]


def contact_changes(name: str) -> list[ContactChange]:
    found = changes(name)
    assert all(isinstance(change, ContactChange) for change in found), name
    return [change for change in found if isinstance(change, ContactChange)]


def test_the_fixtures_are_from_asterisk_22() -> None:
    assert MANIFEST["asterisk_version"].startswith("Asterisk 22.")
    assert len(AMI_FIXTURES) == len(MANIFEST["phases"])


@pytest.mark.parametrize("name", AMI_FIXTURES)
def test_every_fixture_parses_into_ami_messages(name: str) -> None:
    fixture = ami_fixture(name)
    assert fixture.blocks, f"{name} is empty"
    assert len(fixture.messages) == len(fixture.blocks), "a block panoramisk would not read as a message"
    for message in fixture.messages:
        assert ("Event" in message) != ("Response" in message)
    # Every ContactStatus / Registry event of every phase maps to a change of a DN.
    for event in fixture.events:
        change = parse_change(event)
        if event["Event"] in ("ContactStatus", "Registry"):
            assert change is not None, event
            assert change.dn in ("1002", "1003")
        else:
            assert change is None


def test_register_is_a_present_contact_of_the_dn() -> None:
    [change] = contact_changes("04-register-1002.ami")
    assert (change.dn, change.status, change.present) == ("1002", "NonQualified", True)
    assert change.uri.startswith("sip:") and "@127.0.0.1:" in change.uri


def test_a_refresh_publishes_no_contact_event() -> None:
    assert changes("05-refresh-1002.ami") == []


def test_unregister_removes_the_same_contact() -> None:
    [registered] = contact_changes("04-register-1002.ami")
    [removed] = contact_changes("07-unregister-1002.ami")
    assert (removed.dn, removed.uri, removed.status, removed.present) == ("1002", registered.uri, "Removed", False)


def test_a_replaced_contact_is_announced_before_the_old_one_is_removed() -> None:
    [first] = contact_changes("08-register-1003.ami")
    new, old = contact_changes("09-replace-1003.ami")
    assert new.dn == old.dn == "1003"
    assert new.present and new.uri != first.uri
    assert not old.present and old.uri == first.uri


def test_static_registrations_report_registered_and_rejected() -> None:
    # The order depends on each registration's random initial delay (max_random_initial_delay).
    assert sorted(changes("11-static-on.ami"), key=lambda change: change.dn) == [
        RegistryChange("1002", "Registered", "sip:127.0.0.1:5090"),
        RegistryChange("1003", "Rejected", "sip:127.0.0.1:5090"),
    ]
    assert changes("13-static-off.ami") == [RegistryChange("1002", "Unregistered", "sip:127.0.0.1:5090")]


def test_a_reload_is_an_event_the_monitor_can_resync_on() -> None:
    reloads = [event for event in ami_fixture("13-static-off.ami").events if event["Event"] == "Reload"]
    assert [event["Module"] for event in reloads] == ["res_pjsip.so"]


def test_the_log_line_has_exactly_the_documented_fields() -> None:
    [event] = ami_fixture("04-register-1002.ami").events[-1:]
    line = parse(event, "kamailio", now=1234.5)
    assert line is not None
    record = json.loads(line.to_json())
    assert set(record) == {"time", "dn", "event", "contact", "source", "mode"}
    assert record["time"] == 1234.5
    assert (record["dn"], record["event"], record["source"], record["mode"]) == (
        "1002",
        "NonQualified",
        "asterisk",
        "kamailio",
    )
    [registry] = [change for change in changes("11-static-on.ami") if change.dn == "1002"]
    static = json.loads(to_log_event(registry, "static", 1.0).to_json())
    assert (static["dn"], static["event"], static["contact"], static["source"]) == (
        "1002",
        "Registered",
        "sip:127.0.0.1:5090",
        "genesys-static",
    )


# --------------------------------------------------------------------------- action responses


def test_show_contacts_with_no_contact_is_an_error_response_meaning_empty() -> None:
    response = ami_fixture("03-sync-empty.ami").response("PJSIPShowContacts")
    assert response["Response"] == "Error" and response["Message"] == "No Contacts found"
    assert contacts_from_show_contacts(response) == {}


def test_show_contacts_lists_the_registered_contact() -> None:
    [registered] = contact_changes("04-register-1002.ami")
    response = ami_fixture("06-sync-registered.ami").response("PJSIPShowContacts")
    assert contacts_from_show_contacts(response) == {"1002": {registered.uri: "NonQualified"}}


def test_contacts_survive_an_asterisk_restart() -> None:
    new_1003, _ = contact_changes("09-replace-1003.ami")
    [again_1002] = contact_changes("10-register-1002-genesys-silent.ami")
    expected = {"1002": {again_1002.uri: "NonQualified"}, "1003": {new_1003.uri: "NonQualified"}}
    for name in ("12-sync-static.ami", "17-restart-sync.ami"):
        response = ami_fixture(name).response("PJSIPShowContacts")
        assert contacts_from_show_contacts(response) == expected, name


@pytest.mark.parametrize("name", [name for name in SYNC_FIXTURES if "PJSIPShowAors" in ami_fixture(name).phase["sent"]])
def test_show_aors_agrees_with_show_contacts(name: str) -> None:
    fixture = ami_fixture(name)
    by_contacts = contacts_from_show_contacts(fixture.response("PJSIPShowContacts"))
    by_aors = contacts_from_show_aors(fixture.response("PJSIPShowAors"))
    assert {dn: set(uris) for dn, uris in by_aors.items()} == {dn: set(uris) for dn, uris in by_contacts.items()}


def test_show_registrations_outbound() -> None:
    assert (
        registrations_from_show_outbound(ami_fixture("03-sync-empty.ami").response("PJSIPShowRegistrationsOutbound"))
        == {}
    )
    static = ami_fixture("12-sync-static.ami").response("PJSIPShowRegistrationsOutbound")
    assert registrations_from_show_outbound(static) == {"1002": "Registered", "1003": "Rejected"}
    removed = ami_fixture("14-sync-static-off.ami").response("PJSIPShowRegistrationsOutbound")
    assert registrations_from_show_outbound(removed) == {}


def test_an_other_error_response_is_not_mistaken_for_an_empty_list() -> None:
    # Asterisk's real answer to a refused login, standing for any error answer (permission, unknown command).
    refused = ami_fixture("01-login-failed.ami").messages[0]
    assert refused["Response"] == "Error"
    for parser in (contacts_from_show_contacts, contacts_from_show_aors, registrations_from_show_outbound):
        with pytest.raises(ActionError, match="Authentication failed"):
            parser(refused)


@pytest.mark.parametrize(("aor", "dn"), [("1002", "1002"), ("1002;@6e91da61", "1002"), ("sip:1003", "1003")])
def test_dn_from_an_aor_or_contact_id(aor: str, dn: str) -> None:
    assert dn_from_aor(aor) == dn


@pytest.mark.parametrize(
    ("uri", "dn"), [("sip:1003@127.0.0.1", "1003"), ("<sips:1003@gw:5061>", "1003"), ("1002", "1002")]
)
def test_dn_from_a_client_uri(uri: str, dn: str) -> None:
    assert dn_from_uri(uri) == dn


def test_no_dn_in_a_server_uri() -> None:
    assert dn_from_uri("sip:127.0.0.1:5090") is None
