"""Calls, fed with the AMI traffic of real calls through Asterisk 22 (fixtures/calls, capture_calls.py).

Uniqueids, ports and times change with every capture: the tests take them from the fixtures.
"""

from __future__ import annotations

import json

import pytest
from registration_monitor.events import (
    CALL_ENDED,
    CALL_FAILED,
    CALL_STARTED,
    CallChange,
    ChannelCreated,
    ChannelHungUp,
    DialBegun,
    DialEnded,
    ShownChannel,
    bridged_pairs,
    channels_from_show_channels,
    endpoint_of,
    parse_call_event,
    parse_change,
)
from registration_monitor.state import INBOUND, OUTBOUND, MonitorState

from .captured import CALL_FIXTURES, CALLS_MANIFEST, ami_fixture, feed_calls

AGENT = CALLS_MANIFEST["agent"]
OFFLINE_AGENT = CALLS_MANIFEST["offline_agent"]
NUMBER = CALLS_MANIFEST["number"]
REFUSED_NUMBER = CALLS_MANIFEST["refused_number"]
GENESYS_CALLER = CALLS_MANIFEST["genesys_caller"]
DNS = (AGENT, OFFLINE_AGENT)
# Every phase with the monitor's AMI user granted read=call, in capture order.
CALL_PHASES = [name for name in CALL_FIXTURES if ami_fixture(name).phase["read"] == CALLS_MANIFEST["read"]["capture"]]


def calls_file(name: str) -> str:
    [match] = [fixture for fixture in CALL_FIXTURES if fixture.split("-", 1)[1] == f"{name}.ami"]
    return match


def channels(name: str) -> list[ShownChannel]:
    return channels_from_show_channels(ami_fixture(calls_file(name)).response("CoreShowChannels"))


def state_after(*names: str) -> tuple[MonitorState, list[CallChange]]:
    state = MonitorState("kamailio", DNS)
    changes: list[CallChange] = []
    for name in names:
        changes += feed_calls(state, calls_file(name))
    return state, changes


def in_progress(state: MonitorState) -> dict[str, int]:
    return state.calls_by_direction()


# --------------------------------------------------------------------------- the fixtures themselves


def test_the_call_fixtures_are_from_asterisk_22_and_complete() -> None:
    assert CALLS_MANIFEST["asterisk_version"].startswith("Asterisk 22.")
    assert [ami_fixture(name).phase["file"] for name in CALL_FIXTURES] == [
        phase["file"] for phase in CALLS_MANIFEST["phases"]
    ]
    assert CALLS_MANIFEST["read"] == {"role": "system,reporting,security", "capture": "system,reporting,security,call"}
    # The SIP outcomes the far ends saw: each scenario did what its name says.
    sip = {phase["file"].split("-", 1)[1].removesuffix(".ami"): phase["sip"] for phase in CALLS_MANIFEST["phases"]}
    assert sip["inbound-answered"] == {"genesys_invite": 200, "answered": True}
    assert sip["outbound-answered"] == {"agent_invite": 200, "answered": True}
    assert sip["inbound-busy"] == {"genesys_invite": 486}
    assert sip["inbound-cancel"] == {"genesys_invite": 487}
    assert sip["inbound-agent-offline"] == {"genesys_invite": 480}
    assert sip["outbound-rejected-number"] == {"agent_invite": 403}
    assert sip["outbound-busy"] == {"agent_invite": 486}


@pytest.mark.parametrize("name", CALL_FIXTURES)
def test_every_call_fixture_parses(name: str) -> None:
    fixture = ami_fixture(name)
    assert len(fixture.messages) == len(fixture.blocks), "a block panoramisk would not read as a message"
    for message in fixture.messages:
        assert ("Event" in message) != ("Response" in message)
    for event in fixture.events:
        call_event = parse_call_event(event)
        assert (call_event is not None) == (event["Event"] in ("Newchannel", "DialBegin", "DialEnd", "Hangup")), event
        if call_event is not None:
            assert parse_change(event) is None
            channel = call_event.caller if isinstance(call_event, (DialBegun, DialEnded)) else call_event.channel
            assert endpoint_of(channel.name) in ("genesys", AGENT)


def test_read_permissions_without_call_show_no_call_event() -> None:
    """A manager.conf without "call" (read=system,reporting,security). Asterisk sends the call events
    (Newchannel, DialBegin/DialEnd, Hangup: class "call") only to users with read=call."""
    role_phases = [name for name in CALL_FIXTURES if ami_fixture(name).phase["read"] == CALLS_MANIFEST["read"]["role"]]
    assert [name.split("-", 1)[1] for name in role_phases] == [
        "role-login.ami",
        "register-1002.ami",
        "role-inbound-answered.ami",
        "role-sync-inbound-call.ami",
        "role-inbound-ended.ami",
    ]
    for name in role_phases:
        events = ami_fixture(name).events
        assert [parse_call_event(event) for event in events if parse_call_event(event)] == [], name
        assert not any(event.get("Privilege", "").startswith("call") for event in events), name
    # The action still answers (write=system,reporting): the gauge can be resynced, attempts and failures not seen.
    state = MonitorState("kamailio", DNS)
    state.replace_calls(channels("role-sync-inbound-call"))
    assert in_progress(state) == {INBOUND: 1, OUTBOUND: 0}


# --------------------------------------------------------------------------- events -> calls


def test_an_inbound_call_goes_0_1_0_when_the_agent_hangs_up() -> None:
    state = MonitorState("kamailio", DNS)
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 0}
    [started] = feed_calls(state, calls_file("inbound-answered"))
    assert (started.event, started.direction, started.dn, started.number) == (
        CALL_STARTED,
        INBOUND,
        AGENT,
        GENESYS_CALLER,
    )
    assert in_progress(state) == {INBOUND: 1, OUTBOUND: 0}
    assert state.calls_by_dn() == {AGENT: 1, OFFLINE_AGENT: 0}
    assert state.call_attempts == {INBOUND: 1}
    [ended] = feed_calls(state, calls_file("inbound-hangup-by-agent"))  # two Hangups, one end
    assert (ended.event, ended.call) == (CALL_ENDED, started.call)
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 0}
    assert state.calls == {}
    assert state.call_failures == {}


def test_an_outbound_call_goes_0_1_0_when_genesys_hangs_up() -> None:
    state = MonitorState("kamailio", DNS)
    [started] = feed_calls(state, calls_file("outbound-answered"))
    assert (started.event, started.direction, started.dn, started.number) == (CALL_STARTED, OUTBOUND, AGENT, NUMBER)
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 1}
    [ended] = feed_calls(state, calls_file("outbound-hangup-by-genesys"))
    assert (ended.event, ended.call) == (CALL_ENDED, started.call)
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 0}
    assert state.call_attempts == {OUTBOUND: 1}
    assert state.calls == {}


def test_two_calls_at_once_and_no_double_count_when_both_legs_hang_up() -> None:
    state, started = state_after("two-calls-answered")
    assert sorted((change.event, change.direction) for change in started) == [
        (CALL_STARTED, INBOUND),
        (CALL_STARTED, OUTBOUND),
    ]
    assert in_progress(state) == {INBOUND: 1, OUTBOUND: 1}
    assert state.calls_by_dn() == {AGENT: 2, OFFLINE_AGENT: 0}
    hangups = [
        event for event in ami_fixture(calls_file("two-calls-hangup-by-callers")).events if event["Event"] == "Hangup"
    ]
    assert len(hangups) == 4
    ended = feed_calls(state, calls_file("two-calls-hangup-by-callers"))
    assert sorted((change.event, change.call) for change in ended) == sorted(
        (CALL_ENDED, change.call) for change in started
    )
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 0}
    # The same Hangups again change nothing.
    assert feed_calls(state, calls_file("two-calls-hangup-by-callers")) == []


@pytest.mark.parametrize(
    ("name", "direction", "reason", "dn"),
    [
        ("inbound-busy", INBOUND, "busy", AGENT),
        ("inbound-cancel", INBOUND, "cancel", AGENT),
        ("inbound-agent-offline", INBOUND, "chanunavail", OFFLINE_AGENT),
        ("outbound-rejected-number", OUTBOUND, "rejected_number", AGENT),
        ("outbound-busy", OUTBOUND, "busy", AGENT),
    ],
)
def test_a_failed_set_up_is_counted_once_with_its_reason(name: str, direction: str, reason: str, dn: str) -> None:
    state, changes = state_after(name)
    [failed] = changes
    assert (failed.event, failed.direction, failed.reason, failed.dn) == (CALL_FAILED, direction, reason, dn)
    assert state.call_failures == {(direction, reason): 1}
    assert state.call_attempts == {direction: 1}
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 0}
    assert state.calls == {}  # every Hangup seen: nothing left behind


def test_a_refusal_before_dial_has_no_dial_events_and_its_cause_names_the_reason() -> None:
    offline = [parse_call_event(event) for event in ami_fixture(calls_file("inbound-agent-offline")).events]
    refused = [parse_call_event(event) for event in ami_fixture(calls_file("outbound-rejected-number")).events]
    for events, cause, exten in ((offline, 20, OFFLINE_AGENT), (refused, 21, REFUSED_NUMBER)):
        kinds = [type(event) for event in events if event is not None]
        assert kinds == [ChannelCreated, ChannelHungUp]
        created, hung_up = (event for event in events if event is not None)
        assert isinstance(created, ChannelCreated) and isinstance(hung_up, ChannelHungUp)
        assert created.channel.exten == exten
        assert hung_up.cause == cause


def test_the_whole_capture_in_order_counts_attempts_and_failures_and_ends_at_zero() -> None:
    state = MonitorState("kamailio", DNS)
    log: list[CallChange] = []
    for name in CALL_PHASES:
        log += feed_calls(state, name)
    assert state.call_attempts == {INBOUND: 5, OUTBOUND: 4}
    assert state.call_failures == {
        (INBOUND, "busy"): 1,
        (INBOUND, "cancel"): 1,
        (INBOUND, "chanunavail"): 1,
        (OUTBOUND, "rejected_number"): 1,
        (OUTBOUND, "busy"): 1,
    }
    assert [change.event for change in log].count(CALL_STARTED) == 4
    assert [change.event for change in log].count(CALL_ENDED) == 4
    assert [change.event for change in log].count(CALL_FAILED) == 5
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 0}
    assert state.calls == {}


def test_only_configured_dns_are_agents() -> None:
    state = MonitorState("kamailio", [OFFLINE_AGENT])  # 1002 is not a configured DN
    assert feed_calls(state, calls_file("outbound-answered")) == []
    assert state.call_attempts == {}
    unconfigured = MonitorState("kamailio")  # no DN list: every endpoint but Genesys's is an agent
    assert len(feed_calls(unconfigured, calls_file("outbound-answered"))) == 1


def test_a_call_first_seen_at_its_dial_end_is_counted() -> None:
    """The monitor (re)connected while the call rang: no Newchannel, no DialBegin."""
    state = MonitorState("kamailio", DNS)
    for event in ami_fixture(calls_file("inbound-busy")).events:
        if event["Event"] in ("DialEnd", "Hangup"):
            call_event = parse_call_event(event)
            assert call_event is not None
            state.apply_call_event(call_event)
    assert state.call_attempts == {INBOUND: 1}
    assert state.call_failures == {(INBOUND, "busy"): 1}
    assert state.calls == {}


def test_a_hangup_before_dial_after_a_gap_is_not_a_refusal() -> None:
    """The Newchannel was seen, then the connection was lost: the Dial may have happened unseen."""
    state = MonitorState("kamailio", DNS)
    events = [parse_call_event(event) for event in ami_fixture(calls_file("inbound-agent-offline")).events]
    created, hung_up = (event for event in events if event is not None)
    state.apply_call_event(created)
    state.calls_lost_sight()
    assert state.apply_call_event(hung_up) == []
    assert state.call_attempts == {INBOUND: 1}
    assert state.call_failures == {}
    assert state.calls == {}


# --------------------------------------------------------------------------- CoreShowChannels


def test_show_channels_with_no_call_is_an_empty_success() -> None:
    response = ami_fixture(calls_file("sync-idle")).response("CoreShowChannels")
    assert response[0]["Response"] == "Success"
    assert channels("sync-idle") == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sync-idle", {INBOUND: 0, OUTBOUND: 0}),
        ("sync-inbound-call", {INBOUND: 1, OUTBOUND: 0}),
        ("sync-outbound-call", {INBOUND: 0, OUTBOUND: 1}),
        ("sync-two-calls", {INBOUND: 1, OUTBOUND: 1}),
    ],
)
def test_a_resync_counts_the_bridged_agent_genesys_calls(name: str, expected: dict[str, int]) -> None:
    state = MonitorState("kamailio", DNS)
    revealed = state.replace_calls(channels(name))
    assert in_progress(state) == expected
    assert len(revealed) == sum(expected.values())
    assert all(change.event == CALL_STARTED for change in revealed)
    assert state.call_attempts == {}  # a sync counts nothing


def test_the_resync_finds_the_same_calls_the_events_made() -> None:
    """Same keys, directions, DNs and numbers from CoreShowChannels as from the events."""
    by_events, _ = state_after("two-calls-answered")
    by_sync = MonitorState("kamailio", DNS)
    by_sync.replace_calls(channels("sync-two-calls"))
    assert {(c.key, c.direction, c.dn, c.number, frozenset(c.channels)) for c in by_events.calls_in_progress()} == {
        (c.key, c.direction, c.dn, c.number, frozenset(c.channels)) for c in by_sync.calls_in_progress()
    }
    pairs = bridged_pairs(channels("sync-two-calls"))
    assert sorted(endpoint_of(caller.name) for caller, _ in pairs) == [AGENT, "genesys"]
    # A resync that agrees with the events reveals nothing; the events end the calls afterwards.
    assert by_events.replace_calls(channels("sync-two-calls")) == []
    assert len(feed_calls(by_sync, calls_file("two-calls-hangup-by-callers"))) == 2
    assert by_sync.calls == {}


def test_a_resync_ends_a_call_whose_hangup_was_missed() -> None:
    state, [started] = state_after("inbound-answered")
    [ended] = state.replace_calls(channels("sync-idle"))  # e.g. Asterisk restarted during the call
    assert (ended.event, ended.call) == (CALL_ENDED, started.call)
    assert in_progress(state) == {INBOUND: 0, OUTBOUND: 0}
    assert state.calls == {}


def test_events_seen_during_a_sync_are_applied_again_without_counting_twice() -> None:
    """The snapshot was taken before the call was answered; its events arrived while the sync ran."""
    state = MonitorState("kamailio", DNS)
    events = [e for e in map(parse_call_event, ami_fixture(calls_file("inbound-answered")).events) if e]
    for event in events:
        state.apply_call_event(event)  # live, as they arrive (the call is logged then)
    assert state.replace_calls(channels("sync-idle"), events) == []  # nothing new to log
    assert in_progress(state) == {INBOUND: 1, OUTBOUND: 0}
    assert state.call_attempts == {INBOUND: 1}


def test_a_resync_drops_a_ringing_call_whose_channel_is_gone() -> None:
    state = MonitorState("kamailio", DNS)
    for event in ami_fixture(calls_file("inbound-cancel")).events:
        if event["Event"] in ("Newchannel", "DialBegin"):
            call_event = parse_call_event(event)
            assert call_event is not None
            state.apply_call_event(call_event)
    assert len(state.calls) == 1
    assert state.replace_calls(channels("sync-idle")) == []
    assert state.calls == {}


def test_the_state_document_has_the_calls() -> None:
    state, _ = state_after("two-calls-answered")
    document = state.snapshot(0.0)
    assert document["calls"] == {
        "in_progress": 2,
        "by_direction": {INBOUND: 1, OUTBOUND: 1},
        "by_dn": {AGENT: 2, OFFLINE_AGENT: 0},
    }


def test_a_call_log_line() -> None:
    _, [started] = state_after("outbound-answered")
    record = json.loads(started.log_event("kamailio", 12.5).to_json())
    assert record == {
        "time": 12.5,
        "dn": AGENT,
        "event": "CallStarted",
        "direction": OUTBOUND,
        "reason": "",
        "number": NUMBER,
        "call": started.call,
        "source": "asterisk-calls",
        "mode": "kamailio",
    }
    _, [failed] = state_after("outbound-rejected-number")
    record = json.loads(failed.log_event("static", 1.0, source="asterisk-calls").to_json())
    assert (record["event"], record["reason"], record["number"], record["mode"]) == (
        "CallFailed",
        "rejected_number",
        REFUSED_NUMBER,
        "static",
    )
