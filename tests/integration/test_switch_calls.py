"""A switch never cuts a call (issue 16), with real browsers on real calls.

Two agents are on calls when a switch starts: 1002 took a call from Genesys, 1003 called out
through Genesys (the lab stand-in and its far end, as in test_calls.py). While the playbook
runs, the test checks what an agent would notice:
  - nginx's /ws target changes, yet both calls keep their audio both ways (packet counts at the
    browser and at the far end keep rising) and neither WebSocket closes;
  - Genesys hangs up 1002's call: the BYE reaches the browser, and 1002's client moves to the
    new path at once (it registers again there while the switch still waits for 1003);
  - a new call placed to 1002 while the switch runs is answered, with audio;
  - hold and resume on 1003's call, still on the previous path, work;
  - 1003 hangs up: the BYE reaches Genesys, the switch then finishes, having cut no call and named
    the calls it waited for; 1003's client is on the new path;
  - after the switch, 1003 calls out on the new path: audio, hold and resume, its BYE reaches Genesys.
The stand-in's bindings of both DNs are sampled every 100 ms all along: neither DN is ever
seen unbound (resolution: the 100 ms interval; an unanswered sample counts as unbound).
Both directions; each against the registrar behaviour named in its parameter.
"""

from __future__ import annotations

import re
import time

import pytest
from lab import (
    DN_PASSWORDS,
    GENESYS,
    LAB_VARS,
    MODE_PLAYBOOKS,
    STANDIN,
    STANDIN_DEFAULT,
    asterisk_cli,
    ensure_mode,
    error_lines,
    healthz,
    kamailio_rpc,
    playbook_running,
    rising,
    service_log,
    standin_registrar,
    utc_now,
    wait_for,
)
from lab.browser import Browser, Phone, browser_tests_mark
from lab.farend import FarEnd, FarEndCall
from lab.gap import Sampler

INBOUND, OUTBOUND = "1002", "1003"
NUMBER = "5551000"
MIN_ENERGY = 100.0  # the fake microphone's tone reads ~700 at the far end; silence reads 0

pytestmark = browser_tests_mark()


def assert_audio_flows(phone: Phone, call: FarEndCall, when: str) -> None:
    assert rising(lambda: phone.stats()["packetsReceived"]), f"{phone}: no audio reaches the agent {when}"
    assert rising(lambda: call.rtp_received), f"{phone}: no audio from the agent reaches Genesys {when}"
    assert call.audio_energy() > MIN_ENERGY, f"Genesys receives silence from {phone} {when}"


def on_path(dn: str, mode: str) -> bool:
    """The DN's client is registered through `mode`'s path right now."""
    if mode == "static":  # straight to Asterisk: its contact is nginx's upstream socket, transport WS
        contact = re.compile(rf"^\s*Contact:\s+{dn}/sip:\S+;transport=WS\b", re.MULTILINE | re.IGNORECASE)
        return contact.search(asterisk_cli("pjsip list contacts")) is not None
    live = {line.split(":", 1)[0] for line in (kamailio_rpc("ws.dump") or {}).get("connections", [])}
    names = [item["name"] for bucket in kamailio_rpc("htable.dump", "wsdn") or [] for item in bucket.get("slot", [])]
    return any(name.split("@")[0] == dn and name.split("@")[1] in live for name in names)


def running_lines(log: str) -> str:
    """The log without what Kamailio prints while it shuts down (the rollback stops it: its TCP
    processes race the main one's exit, "CRITICAL ... receive_fd(): EOF"), until it starts again."""
    kept: list[str] = []
    stopping = False
    for line in log.splitlines():
        if "Thank you for flying kamailio" in line:
            stopping = True
        elif stopping and line.strip().startswith("Listening on"):
            stopping = False
        if not stopping:
            kept.append(line)
    return "\n".join(kept)


def disconnects(phone: Phone, since: int) -> list[dict[str, object]]:
    return [event for event in phone.events(since) if event["type"] == "disconnected"]


@pytest.mark.parametrize(
    ("start", "target", "behaviour"),
    [
        ("kamailio", "static", STANDIN_DEFAULT),
        ("static", "kamailio", STANDIN_DEFAULT),
        ("kamailio", "static", "replace"),
        ("static", "kamailio", "replace"),
    ],
    ids=["rollback", "revert", "rollback-single", "revert-single"],
)
def test_calls_in_progress_survive_the_switch(
    start: str, target: str, behaviour: str, browser: Browser, far_end: FarEnd
) -> None:
    if behaviour == STANDIN_DEFAULT:
        check_switch_with_calls(start, target, None, browser, far_end)
    else:  # the stand-in keeping one contact per DN, for this test only (the collection is not told)
        with standin_registrar(behaviour):
            check_switch_with_calls(start, target, {"webrtc_dns": LAB_VARS["webrtc_dns"]}, browser, far_end)


def check_switch_with_calls(
    start: str, target: str, extra: dict[str, str] | None, browser: Browser, far_end: FarEnd
) -> None:
    ensure_mode(start, extra)
    started = utc_now()
    far_end.serve(answer_after=0.2, behaviour="answer")
    far_end.drain_incoming()
    inbound = browser.new_phone(INBOUND, DN_PASSWORDS[INBOUND])
    outbound = browser.new_phone(OUTBOUND, DN_PASSWORDS[OUTBOUND])
    sampler = Sampler([INBOUND, OUTBOUND])
    try:
        inbound.wait_registered(15)
        outbound.wait_registered(15)
        mark_in = inbound.mark()
        call_in = far_end.invite(f"sip:{INBOUND}@{GENESYS}", proxy=STANDIN, from_user=NUMBER)
        assert call_in.wait_answered(15), f"inbound call not answered: {call_in.final_status}"
        inbound.wait_event("confirmed", 10, since=mark_in)
        mark_out = outbound.call("5551300")
        call_out = far_end.wait_incoming(15)
        outbound.wait_event("confirmed", 15, since=mark_out, fail_on=("failed",))
        inbound.wait_media(min_packets=30, timeout=15)
        outbound.wait_media(min_packets=30, timeout=15)

        sampler.start()
        with playbook_running(MODE_PLAYBOOKS[target], extra) as switch:
            wait_for(f"nginx's /ws pointing at {target}", lambda: healthz() == f"ok {target}" or None, timeout=240)
            time.sleep(2)  # past the drain of the idle connections
            assert switch.proc.poll() is None, f"the switch ended with calls still up:\n{switch.output()[-3000:]}"
            for dn, phone, call, mark in (
                (INBOUND, inbound, call_in, mark_in),
                (OUTBOUND, outbound, call_out, mark_out),
            ):
                assert not disconnects(phone, mark), f"{phone}: its WebSocket closed during its call"
                assert_audio_flows(phone, call, "after nginx's reload")
                assert on_path(dn, start), f"{phone} left the {start} path while on a call"

            # Genesys hangs up: the BYE reaches the browser, whose client then moves at once.
            moved = inbound.mark()
            assert call_in.bye() == 200
            inbound.wait_event("ended", 10, since=mark_in, match={"originator": "remote"})
            inbound.wait_event("registered", 15, since=moved, fail_on=("registrationFailed",))
            wait_for(f"{INBOUND} registered through the {target} path", lambda: on_path(INBOUND, target) or None, 10)

            # A new call placed while the switch still runs is answered, with audio.
            mark_new = inbound.mark()
            call_new = far_end.invite(f"sip:{INBOUND}@{GENESYS}", proxy=STANDIN, from_user=NUMBER)
            assert call_new.wait_answered(15), f"a call placed during the switch failed: {call_new.final_status}"
            inbound.wait_event("confirmed", 10, since=mark_new)
            inbound.wait_media(min_packets=20, timeout=15)
            assert_audio_flows(inbound, call_new, "on a call placed during the switch")
            assert call_new.bye() == 200

            # Hold and resume on the call still on the previous path.
            assert switch.proc.poll() is None, "the switch did not wait for the call still up"
            outbound.hold()
            wait_for("Genesys told of the hold", lambda: call_out.remote_hold or None, 5)
            outbound.unhold()
            wait_for("Genesys told of the resume", lambda: (not call_out.remote_hold) or None, 5)
            assert_audio_flows(outbound, call_out, "after hold and resume during the switch")

            # The agent hangs up: the BYE reaches Genesys, and the switch can finish.
            moved_out = outbound.mark()
            assert outbound.hangup()
            assert call_out.wait_ended(10), "the agent's BYE never reached Genesys"
            rc = switch.wait(timeout=300)
            output = switch.output()
        outbound.wait_event("registered", 15, since=moved_out, fail_on=("registrationFailed",))
        wait_for(f"{OUTBOUND} registered through the {target} path", lambda: on_path(OUTBOUND, target) or None, 10)

        # After the switch, on the new path: a call with audio, hold and resume, ended by the agent.
        mark_after = outbound.call("5551300")
        call_after = far_end.wait_incoming(15)
        outbound.wait_event("confirmed", 15, since=mark_after, fail_on=("failed",))
        outbound.wait_media(min_packets=20, timeout=15)
        assert_audio_flows(outbound, call_after, "on a call after the switch")
        outbound.hold()
        wait_for("Genesys told of the hold after the switch", lambda: call_after.remote_hold or None, 5)
        outbound.unhold()
        wait_for("Genesys told of the resume after the switch", lambda: (not call_after.remote_hold) or None, 5)
        assert_audio_flows(outbound, call_after, "after hold and resume after the switch")
        assert outbound.hangup()
        assert call_after.wait_ended(10), "the agent's BYE after the switch never reached Genesys"
    finally:
        sampler.stop()
        inbound.close()
        outbound.close()

    assert rc == 0, output[-4000:]
    summary = re.findall(r'"msg": "(lab-gateway: mode .*)"', output)
    assert summary, output[-3000:]
    assert "agents on a call 2 -> 0" in summary[-1] and "calls cut none" in summary[-1], summary[-1]
    assert re.search(rf"waited for the calls of\s+DN {INBOUND} [\d.]+ s, DN {OUTBOUND} [\d.]+ s", summary[-1]), summary[
        -1
    ]
    assert sampler.missed == 0, f"{sampler.missed} samples unanswered by the stand-in"
    # Moving the clients is an orderly close for every daemon: nothing logged as an error.
    logs = {
        service: running_lines(service_log(service, since=started)) for service in ("nginx", "kamailio", "asterisk")
    }
    errors = {
        name: error_lines(log) + [line for line in log.splitlines() if "[error]" in line] for name, log in logs.items()
    }
    assert not any(errors.values()), errors
    gaps = sampler.gaps_ms()
    assert all(gap == 0 for gap in gaps.values()), (
        f"DNs unbound during the switch (ms, resolution 100 ms): {gaps}; {sampler.transitions(sampler.samples[0][0])}"
    )
