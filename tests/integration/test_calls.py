"""Calls through the gateway, in both modes, with a real browser (issue: calls).

The agent is JsSIP in headless Chromium (tests/lab/browser.py), over wss through nginx, as
the Electron softphone. Genesys is the lab stand-in (a real proxy/registrar on 127.0.0.81)
with a far end behind it (tests/lab/farend.py on 127.0.0.81:5090: a SIP UA with its own
RTP, the tests' media peer). Every call is proven with media both ways: the browser's
getStats() counters rise, and the far end receives the browser's audio (its energy is
measured: the fake microphone plays a tone, silence would read 0).

The module runs every test in kamailio mode, then in static mode (one switch each).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from lab import (
    DN_PASSWORDS,
    GENESYS,
    STANDIN,
    asterisk_cli,
    ensure_mode,
    error_lines,
    gateway_state,
    monitor_metrics,
    rising,
    service_log,
    standin_log,
    utc_now,
    wait_for,
)
from lab.browser import Browser, Phone, browser_tests_mark
from lab.farend import FarEnd, FarEndCall

AGENT = "1002"
OTHER_AGENT = "1003"
NUMBER = "5551000"  # a number the stand-in sends to the far end (lab_genesys_far_end_regex)
MIN_ENERGY = 100.0  # the fake microphone's tone reads ~700 at the far end; silence reads 0
PROMPT_S = 3.0  # "a prompt final answer": well under any ring or transaction timeout

MODE_STARTED: dict[str, str] = {}  # mode -> when its calls began (UTC), for the log check
CALLS_MADE: dict[str, int] = {}  # mode -> calls the module's tests placed (the log check needs some)

pytestmark = browser_tests_mark()


@pytest.fixture(scope="module", params=["kamailio", "static"])
def mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    ensure_mode(mode)
    MODE_STARTED[mode] = utc_now()
    return mode


@pytest.fixture
def started() -> str:
    """When the test began (UTC), to read daemon logs from then on only."""
    return utc_now()


@pytest.fixture
def agent(mode: str, browser: Browser, far_end: FarEnd) -> Iterator[Phone]:
    """Agent 1002 registered in a browser page (auto-answer); the far end answers calls."""
    far_end.serve(answer_after=0.2, behaviour="answer")
    far_end.drain_incoming()
    phone = browser.new_phone(AGENT, DN_PASSWORDS[AGENT])
    phone.wait_registered(15)
    try:
        yield phone
    finally:
        phone.close()


def genesys_calls_agent(far_end: FarEnd, dn: str = AGENT) -> FarEndCall:
    """Genesys sends a call for the DN to the contact it holds (through the stand-in)."""
    mode = gateway_state().get("mode") or "unknown"
    CALLS_MADE[mode] = CALLS_MADE.get(mode, 0) + 1
    return far_end.invite(f"sip:{dn}@{GENESYS}", proxy=STANDIN, from_user=NUMBER)


def monitor_calls_in_progress() -> float:
    return sum(v for k, v in monitor_metrics().items() if k.startswith("webrtc_calls_in_progress"))


def assert_two_way_audio(phone: Phone, call: FarEndCall) -> None:
    phone.wait_media(min_packets=50, timeout=15)
    before = call.rtp_received
    time.sleep(0.6)
    assert call.rtp_received > before, "the far end stopped receiving the agent's audio"
    assert call.audio_energy() > MIN_ENERGY, f"the far end receives silence (energy {call.audio_energy():.0f})"
    stats = phone.stats()
    assert stats["dtlsState"] == "connected" and stats["codec"].lower() in ("audio/pcmu/8000/1", "audio/pcma/8000/1")


# --------------------------------------------------------------------------- Genesys -> agent


def test_inbound_call_rings_is_answered_with_audio_both_ways_and_genesys_hangs_up(
    agent: Phone, far_end: FarEnd
) -> None:
    mark = agent.mark()
    call = genesys_calls_agent(far_end)
    assert call.wait_answered(15), f"not answered: {call.final_status}"
    assert call.ringing_at is not None and call.ringing_at <= (call.answered_at or 0), "no 180 Ringing before 200"
    agent.wait_event("confirmed", 10, since=mark)
    assert_two_way_audio(agent, call)
    assert call.bye() == 200
    agent.wait_event("ended", 10, since=mark, match={"originator": "remote"})


def test_inbound_call_agent_hangs_up(agent: Phone, far_end: FarEnd) -> None:
    mark = agent.mark()
    call = genesys_calls_agent(far_end)
    assert call.wait_answered(15)
    agent.wait_event("confirmed", 10, since=mark)
    agent.wait_media(min_packets=20)
    assert agent.hangup()
    assert call.wait_ended(10), "the agent's BYE never reached Genesys"


def test_caller_cancels_before_the_answer(mode: str, browser: Browser, far_end: FarEnd) -> None:
    phone = browser.new_phone(AGENT, DN_PASSWORDS[AGENT], auto_answer="none")
    try:
        phone.wait_registered(15)
        mark = phone.mark()
        call = genesys_calls_agent(far_end)
        phone.wait_event("newRTCSession", 10, since=mark, match={"direction": "incoming"})
        assert call.cancel() == 487
        phone.wait_event("failed", 10, since=mark, match={"originator": "remote"})
    finally:
        phone.close()


def test_agent_rejects_and_genesys_gets_486(mode: str, browser: Browser, far_end: FarEnd) -> None:
    phone = browser.new_phone(AGENT, DN_PASSWORDS[AGENT], auto_answer="reject")
    try:
        phone.wait_registered(15)
        assert genesys_calls_agent(far_end).wait_final(15) == 486
    finally:
        phone.close()


def test_a_dn_whose_client_is_gone_gets_a_prompt_480(mode: str, browser: Browser, far_end: FarEnd) -> None:
    """The agent's app dies without unregistering: Genesys still holds a contact for the DN
    (Asterisk's ;line= contact, or Kamailio's forwarded one until it expires). Its call must
    end at once with 480, not ring into a dead socket until a timer fires."""
    phone = browser.new_phone(AGENT, DN_PASSWORDS[AGENT])
    phone.wait_registered(15)
    phone.drop()
    time.sleep(1)  # the WebSocket close reaches the gateway
    began = time.monotonic()
    status = genesys_calls_agent(far_end).wait_final(15)
    took = time.monotonic() - began
    assert status == 480, f"Genesys got {status} for a DN with no live client"
    assert took < PROMPT_S, f"the 480 took {took:.1f} s"


def test_a_call_whose_two_ends_vanish_ends_within_a_minute(mode: str, browser: Browser, far_end: FarEnd) -> None:
    """The far end stops (no BYE, no RTP) and the agent's browser closes mid-call: Asterisk hangs
    the call up by itself (rtp_timeout), within 60 s, checked every second; afterwards the
    gateway's state and the monitor count no call in progress, so no switch would wait on it."""
    far_end.serve(answer_after=0.2, behaviour="answer")
    phone = browser.new_phone(AGENT, DN_PASSWORDS[AGENT])
    try:
        phone.wait_registered(15)
        mark = phone.mark()
        call = genesys_calls_agent(far_end)
        assert call.wait_answered(15), f"not answered: {call.final_status}"
        phone.wait_event("confirmed", 10, since=mark)
        phone.wait_media(min_packets=20)
        assert AGENT in gateway_state()["calls"]
        call.vanish()
        phone.drop()
        gone = time.monotonic()
        wait_for("the call hung up by Asterisk", lambda: AGENT not in gateway_state()["calls"], timeout=60, interval=1)
        print(f"{mode}: the call ended {time.monotonic() - gone:.0f} s after both ends vanished (< 1 s)")
        wait_for("no call in progress at the monitor", lambda: monitor_calls_in_progress() == 0, timeout=10)
    finally:
        phone.close()


# --------------------------------------------------------------------------- agent -> Genesys


def test_outbound_call_is_answered_with_audio_both_ways_and_the_agent_hangs_up(agent: Phone, far_end: FarEnd) -> None:
    mark = agent.call("5551234")
    incoming = far_end.wait_incoming(15)
    assert incoming.to_user == "5551234"
    assert incoming.from_user == AGENT, "Genesys must see the agent's DN as the caller"
    agent.wait_event("confirmed", 15, since=mark, fail_on=("failed",))
    assert_two_way_audio(agent, incoming)
    assert agent.hangup()
    assert incoming.wait_ended(10), "the agent's BYE never reached Genesys"


def test_outbound_call_far_end_hangs_up(agent: Phone, far_end: FarEnd) -> None:
    mark = agent.call("5551235")
    incoming = far_end.wait_incoming(15)
    agent.wait_event("confirmed", 15, since=mark, fail_on=("failed",))
    agent.wait_media(min_packets=20)
    assert incoming.bye() == 200
    agent.wait_event("ended", 10, since=mark, match={"originator": "remote"})


def test_outbound_call_to_a_busy_number_fails_with_486(agent: Phone, far_end: FarEnd) -> None:
    far_end.serve(behaviour="busy")
    mark = agent.call("5551236")
    failed = agent.wait_event("failed", 15, since=mark)
    assert failed["detail"].get("statusCode") == 486, failed


def test_a_number_outside_the_allow_list_never_reaches_genesys(agent: Phone, started: str) -> None:
    mark = agent.call("0900123456789012345")  # 19 digits: outside ^[0-9]{2,15}$
    failed = agent.wait_event("failed", 15, since=mark)
    assert failed["detail"].get("statusCode") == 403, failed
    assert "0900123456789012345" not in standin_log(since=started)


# --------------------------------------------------------------------------- in the call


def test_hold_and_resume_by_the_agent(agent: Phone, far_end: FarEnd) -> None:
    mark = agent.call("5551237")
    incoming = far_end.wait_incoming(15)
    agent.wait_event("confirmed", 15, since=mark, fail_on=("failed",))
    agent.wait_media(min_packets=20)

    agent.hold()
    deadline = time.monotonic() + 5
    while not incoming.remote_hold and time.monotonic() < deadline:
        time.sleep(0.1)
    assert incoming.remote_hold, "Genesys was not told of the hold (re-INVITE sendonly)"
    time.sleep(0.5)  # packets in flight
    assert not rising(lambda: agent.stats()["packetsReceived"]), "the held agent still receives audio"

    agent.unhold()
    deadline = time.monotonic() + 5
    while incoming.remote_hold and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not incoming.remote_hold, "Genesys was not told of the resume"
    assert rising(lambda: agent.stats()["packetsReceived"]), "no audio to the agent after resume"
    assert rising(lambda: incoming.rtp_received), "no audio to Genesys after resume"
    assert agent.hangup()
    assert incoming.wait_ended(10)


def test_hold_and_resume_by_genesys(agent: Phone, far_end: FarEnd) -> None:
    mark = agent.mark()
    call = genesys_calls_agent(far_end)
    assert call.wait_answered(15)
    agent.wait_event("confirmed", 10, since=mark)
    agent.wait_media(min_packets=20)
    assert call.hold() == 200
    agent.wait_event("hold", 10, since=mark, match={"originator": "remote"})
    assert call.unhold() == 200
    agent.wait_event("unhold", 10, since=mark, match={"originator": "remote"})
    assert rising(lambda: agent.stats()["packetsReceived"]), "no audio to the agent after Genesys resumed"
    assert call.bye() == 200


def test_dtmf_from_the_agent_reaches_the_far_end(agent: Phone, far_end: FarEnd) -> None:
    mark = agent.call("5551238")
    incoming = far_end.wait_incoming(15)
    agent.wait_event("confirmed", 15, since=mark, fail_on=("failed",))
    agent.wait_media(min_packets=20)
    agent.send_dtmf("1234#", duration_ms=120, inter_tone_gap_ms=80)
    deadline = time.monotonic() + 10
    while incoming.received_dtmf() != "1234#" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert incoming.received_dtmf() == "1234#"
    assert agent.hangup()


def test_ten_concurrent_calls_each_with_audio(mode: str, browser: Browser, far_end: FarEnd) -> None:
    """Ten agents' pages (the lab's two DNs, five pages each) each hold an outbound call with
    two-way audio at the same time."""
    far_end.serve(answer_after=0.2, behaviour="answer")
    far_end.drain_incoming()
    phones: list[Phone] = []
    try:
        for index in range(10):
            dn = (AGENT, OTHER_AGENT)[index % 2]
            phone = browser.new_phone(dn, DN_PASSWORDS[dn])
            phone.wait_registered(15)
            phones.append(phone)
        marks = [phone.call(f"55520{index:02d}") for index, phone in enumerate(phones)]
        incoming = {}
        for _ in phones:
            call = far_end.wait_incoming(20)
            incoming[call.to_user] = call
        for phone, mark in zip(phones, marks, strict=True):
            phone.wait_event("confirmed", 20, since=mark, fail_on=("failed",))
        for index, phone in enumerate(phones):
            assert_two_way_audio(phone, incoming[f"55520{index:02d}"])
        channels = asterisk_cli("core show channels count")
        active = re.search(r"(\d+) active calls?", channels)
        assert active and int(active.group(1)) == 10, channels
    finally:
        for phone in phones:
            phone.close()


def test_no_error_lines_in_any_daemon_log_during_the_calls(mode: str) -> None:
    # Run alone, this test would read logs in which no call happened: it needs the module's calls.
    assert CALLS_MADE.get(mode, 0) >= 5, f"only {CALLS_MADE.get(mode, 0)} calls in {mode} mode: run the whole module"
    for service in ("asterisk", "kamailio", "nginx") if mode == "kamailio" else ("asterisk", "nginx"):
        errors = error_lines(service_log(service, since=MODE_STARTED[mode]))
        assert errors == [], f"{service} logged errors during the calls: {errors[:5]}"
