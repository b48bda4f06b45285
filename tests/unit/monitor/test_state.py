"""State keeping, fed with the captured AMI events and Kamailio htable dumps, in capture order."""

from __future__ import annotations

from registration_monitor.events import (
    ContactChange,
    contacts_from_show_contacts,
    parse_change,
    registrations_from_show_outbound,
)
from registration_monitor.state import ForwardOutcome, MonitorState

from .captured import ami_fixture, feed, fixture_time, forwarded


def test_register_then_unregister_counts_one_then_zero() -> None:
    state = MonitorState("kamailio", ["1002", "1003"])
    assert state.counts(0).registered_asterisk == 0
    feed(state, "04-register-1002.ami")
    assert state.registered_asterisk() == {"1002"}
    assert state.counts(0).registered_asterisk == 1
    feed(state, "05-refresh-1002.ami")
    assert state.counts(0).registered_asterisk == 1
    feed(state, "07-unregister-1002.ami")
    assert state.registered_asterisk() == set()
    assert state.contacts == {}


def test_a_replaced_contact_keeps_the_dn_registered_throughout() -> None:
    state = MonitorState("kamailio")
    feed(state, "08-register-1003.ami")
    replaced = [change for event in ami_fixture("09-replace-1003.ami").events if (change := parse_change(event))]
    [new] = [change for change in replaced if isinstance(change, ContactChange) and change.present]
    [old] = [change for change in replaced if isinstance(change, ContactChange) and not change.present]
    state.apply_contact(new)
    assert len(state.contacts["1003"]) == 2
    assert state.registered_asterisk() == {"1003"}
    state.apply_contact(old)
    assert state.contacts == {"1003": {new.uri: "NonQualified"}}


def test_static_registered_rejected_unregistered() -> None:
    state = MonitorState("static", ["1002", "1003"])
    feed(state, "11-static-on.ami")
    assert state.registrations == {"1002": "Registered", "1003": "Rejected"}
    assert state.bound_genesys(0) == {"1002"}
    assert state.failures == {"rejected": 1}
    feed(state, "13-static-off.ami")
    assert state.registrations == {"1002": "Unregistered", "1003": "Rejected"}
    assert state.bound_genesys(0) == set()
    assert state.failures == {"rejected": 1}


def test_a_sync_drops_a_registration_that_was_removed_without_an_event() -> None:
    """Removing the static registrations sends Unregistered for 1002 only: 1003 (Rejected) goes silently."""
    state = MonitorState("static")
    feed(state, "11-static-on.ami")
    feed(state, "13-static-off.ami")
    assert "1003" in state.registrations
    snapshot = registrations_from_show_outbound(
        ami_fixture("14-sync-static-off.ami").response("PJSIPShowRegistrationsOutbound")
    )
    changes = state.replace_registrations(snapshot)
    assert state.registrations == {}
    assert {change.dn for change in changes} == {"1002", "1003"}


def test_the_first_registration_snapshot_is_a_baseline_not_failures() -> None:
    state = MonitorState("static")
    snapshot = registrations_from_show_outbound(
        ami_fixture("12-sync-static.ami").response("PJSIPShowRegistrationsOutbound")
    )
    state.replace_registrations(snapshot)
    assert state.failures == {}
    assert state.bound_genesys(0) == {"1002"}
    # Later: 1002 turned Rejected while the monitor could not see events.
    state.replace_registrations({"1002": "Rejected", "1003": "Rejected"})
    assert state.failures == {"rejected": 1}


def test_a_sync_snapshot_replaces_contacts_and_reports_what_it_revealed() -> None:
    """The monitor saw 1003's first contact, then lost AMI while 1003 reconnected and 1002 registered."""
    state = MonitorState("kamailio")
    [old] = feed(state, "08-register-1003.ami")
    assert isinstance(old, ContactChange)
    snapshot = contacts_from_show_contacts(ami_fixture("17-restart-sync.ami").response("PJSIPShowContacts"))
    changes = state.replace_contacts(snapshot)
    assert state.contacts == snapshot
    assert state.registered_asterisk() == {"1002", "1003"}
    assert sorted((change.dn, change.uri == old.uri, change.present) for change in changes) == [
        ("1002", False, True),
        ("1003", False, True),
        ("1003", True, False),
    ]


# --------------------------------------------------------------------------- Kamailio's fwdres


def test_fwdres_parsing_from_kamailio() -> None:
    assert forwarded("03-sync-empty.htable.json") == {}
    stamp = fixture_time("04-register-1002.htable.json")
    assert forwarded("04-register-1002.htable.json") == {"1002": ForwardOutcome(200, 599, stamp)}
    after_unregister = forwarded("07-unregister-1002.htable.json")["1002"]
    assert (after_unregister.code, after_unregister.expires) == (200, 0)
    rejected = forwarded("08-register-1003.htable.json")["1003"]
    assert (rejected.code, rejected.failure_reason, rejected.event) == (403, "403", "Rejected 403")
    silent = forwarded("10-register-1002-genesys-silent.htable.json")["1002"]
    assert (silent.code, silent.failure_reason, silent.event) == (408, "timeout", "Timeout")


def test_bound_at_genesys_in_kamailio_mode_needs_2xx_expires_and_time_left() -> None:
    outcome = forwarded("04-register-1002.htable.json")["1002"]
    assert outcome.bound(outcome.time + 1)
    assert not outcome.bound(outcome.time + outcome.expires)
    assert not forwarded("07-unregister-1002.htable.json")["1002"].bound(outcome.time)
    assert not forwarded("08-register-1003.htable.json")["1003"].bound(outcome.time)
    assert ForwardOutcome(0, 600, 0).failure_reason == "not_sent"


def test_unbound_is_registered_at_asterisk_minus_bound_at_genesys() -> None:
    state = MonitorState("kamailio", ["1002", "1003"])
    feed(state, "04-register-1002.ami")
    feed(state, "08-register-1003.ami")
    state.replace_forwarded(forwarded("08-register-1003.htable.json"))  # 1002 unregistered at Genesys, 1003 403
    now = fixture_time("08-register-1003.htable.json") + 1
    assert state.counts(now).as_dict() == {"registered_asterisk": 2, "bound_genesys": 0, "unbound_genesys": 2}
    state.replace_forwarded({**forwarded("08-register-1003.htable.json"), **forwarded("04-register-1002.htable.json")})
    now = fixture_time("04-register-1002.htable.json") + 1
    assert state.counts(now).as_dict() == {"registered_asterisk": 2, "bound_genesys": 1, "unbound_genesys": 1}
    assert state.per_dn(now) == {
        "1002": {"registered_asterisk": True, "bound_genesys": True, "bound_static": False, "bound_kamailio": True},
        "1003": {"registered_asterisk": True, "bound_genesys": False, "bound_static": False, "bound_kamailio": False},
    }
    # The binding runs out without any event: unbound again.
    later = now + 600
    assert state.counts(later).as_dict() == {"registered_asterisk": 2, "bound_genesys": 0, "unbound_genesys": 2}


def test_bound_without_a_contact_at_asterisk_is_not_unbound() -> None:
    state = MonitorState("kamailio")
    state.replace_forwarded(forwarded("04-register-1002.htable.json"))
    now = fixture_time("04-register-1002.htable.json")
    assert state.counts(now).as_dict() == {"registered_asterisk": 0, "bound_genesys": 1, "unbound_genesys": 0}


def test_forwarding_failures_are_counted_once_per_new_outcome_after_the_baseline() -> None:
    state = MonitorState("kamailio")
    state.replace_forwarded(forwarded("08-register-1003.htable.json"))  # baseline: 403 of 1003 is old news
    assert state.failures == {}
    state.replace_forwarded(forwarded("08-register-1003.htable.json"))
    assert state.failures == {}
    changed = state.replace_forwarded(forwarded("10-register-1002-genesys-silent.htable.json"))
    assert [dn for dn, _ in changed] == ["1002", "1003"]  # 1002 timed out, 1003 was retried (new time)
    assert state.failures == {"timeout": 1, "403": 1}
    state.replace_forwarded(forwarded("10-register-1002-genesys-silent.htable.json"))
    assert state.failures == {"timeout": 1, "403": 1}


def test_the_mode_decides_what_bound_means() -> None:
    static = MonitorState("static")
    kamailio = MonitorState("kamailio")
    for state in (static, kamailio):
        feed(state, "11-static-on.ami")
        state.replace_forwarded(forwarded("04-register-1002.htable.json"))
    now = fixture_time("04-register-1002.htable.json")
    assert static.bound_genesys(now) == {"1002"}  # from Registry
    kamailio.registrations.clear()
    assert kamailio.bound_genesys(now) == {"1002"}  # from fwdres
    kamailio.forwarded.clear()
    feed(kamailio, "11-static-on.ami")
    assert kamailio.bound_genesys(now) == set()  # a static registration does not count in kamailio mode


def test_state_document_lists_configured_dns_and_counts() -> None:
    state = MonitorState("static", ["1002", "1003", "1004"])
    feed(state, "04-register-1002.ami")
    feed(state, "11-static-on.ami")
    document = state.snapshot(10.0)
    assert document["counts"] == {"registered_asterisk": 1, "bound_genesys": 1, "unbound_genesys": 0}
    assert document["dns"] == {
        "1002": {"registered_asterisk": True, "bound_genesys": True, "bound_static": True, "bound_kamailio": False},
        "1003": {"registered_asterisk": False, "bound_genesys": False, "bound_static": False, "bound_kamailio": False},
        "1004": {"registered_asterisk": False, "bound_genesys": False, "bound_static": False, "bound_kamailio": False},
    }
    assert document["mode"] == "static"
    assert document["ami_connected"] is False


def test_both_paths_are_reported_for_a_switch_in_progress() -> None:
    """revert.yml: static mode still active, Kamailio already forwarding. The monitor changes mode last."""
    state = MonitorState("static", ["1002", "1003"])
    feed(state, "04-register-1002.ami")
    feed(state, "11-static-on.ami")  # static: 1002 Registered, 1003 Rejected
    state.replace_forwarded(forwarded("04-register-1002.htable.json"))  # Kamailio bound 1002 too
    now = fixture_time("04-register-1002.htable.json") + 1
    assert state.per_dn(now)["1002"] == {
        "registered_asterisk": True,
        "bound_genesys": True,
        "bound_static": True,
        "bound_kamailio": True,
    }
    state.replace_registrations({})  # static registrations removed (step 4)
    assert state.per_dn(now)["1002"]["bound_genesys"] is False  # still static mode: that path is gone
    assert state.per_dn(now)["1002"]["bound_kamailio"] is True
