"""Benchmark 6: calls, with a real browser (JsSIP in headless Chromium) as the agent.

setup     Call set-up delay: Genesys (the far end, tests/lab/farend.py, through the stand-in)
          sends an INVITE for DN 1002; the browser answers at once (auto-answer, no delay).
          Measured from the INVITE leaving the far end to its 200 OK arriving (time.monotonic,
          microsecond resolution), p50 and p95, in kamailio mode and in static mode in the same
          run: kamailio mode adds Kamailio on the way to the browser (one more loopback hop).
          Target: kamailio p95 <= 1.1 x static p95.
capacity  Concurrent calls with two-way audio (in the mode measured last): a ladder of N
          browser pages (the lab's two DNs alternately), each holding an outbound call to the
          far end at once. A level passes
          when every call shows audio both ways (the browser's getStats counters rise and the
          far end receives the tone). The ladder stops at the first level that fails; the CPU
          use of the whole machine during the level (/proc/stat, sampled over 2 s) says what
          limits it.
switch    Calls dropped by a switch (issue: a switch never cuts a call): N browser agents
          (full runs only; one page per DN, 6 bench DNs) are each on a call to
          the far end when a switch away from the mode measured last starts;
          once nginx points at the new path, the agents hang up one after another (every 2 s).
          A call is dropped when it ended before its agent hung up (a BYE or a failure the agent
          did not send) or its audio stopped. Baseline in the same run: the seed's procedure
          (tests/lab/seed.py: restart nginx and Asterisk) with the same N calls up. Also the
          switch's duration with the calls in progress (it waits for the last call to end).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import DN_PASSWORDS, FAR_END_PORT, GENESYS, STANDIN, healthz, wait_for
from lab.browser import Browser, Phone
from lab.farend import FarEnd, FarEndCall
from lab.seed import capture, seed_revert, seed_rollback

from bench.common import LAB_USERS, Config, Lab, bench_users, log, percentile, ratio

AGENT = "1002"
TARGET_P95_RATIO = 1.1
PAGES_PER_BROWSER = 10
SWITCH_CALLS_FULL = 6  # calls up through the switch in a full run (smoke: the lab's two DNs)


def cpu_busy(seconds: float) -> float:
    """Share of all CPUs busy over `seconds` (/proc/stat), 0..1."""

    def read() -> tuple[int, int]:
        fields = [int(v) for v in open("/proc/stat", encoding="ascii").readline().split()[1:]]  # noqa: SIM115
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total0, idle0 = read()
    time.sleep(seconds)
    total1, idle1 = read()
    return round(1 - (idle1 - idle0) / max(1, total1 - total0), 3)


def setup_delays(browser: Browser, far_end: FarEnd, count: int) -> dict[str, Any]:
    phone = browser.new_phone(AGENT, DN_PASSWORDS[AGENT])
    delays: list[float] = []
    failures: list[str] = []
    try:
        phone.wait_registered(15)
        for _ in range(count):
            sent = time.monotonic()
            call = far_end.invite(f"sip:{AGENT}@{GENESYS}", proxy=STANDIN, from_user="5551000")
            if not call.wait_answered(15) or call.answered_at is None:
                failures.append(f"final {call.final_status}")
                continue
            delays.append((call.answered_at - sent) * 1000)
            time.sleep(0.3)  # media starts; the next call is not set up while this one is
            call.bye()
            time.sleep(0.2)
    finally:
        phone.close()
    return {
        "calls": count,
        "answered": len(delays),
        "failures": failures,
        "p50_ms": percentile(delays, 50),
        "p95_ms": percentile(delays, 95),
        "max_ms": max(delays, default=None),
        "resolution": "time.monotonic(), < 0.01 ms",
    }


def audio_ok(phone: Phone, call: FarEndCall) -> bool:
    before_sent, before_received = phone.stats()["packetsSent"], phone.stats()["packetsReceived"]
    far_before = call.rtp_received
    time.sleep(1.0)
    after = phone.stats()
    return (
        after["packetsSent"] > before_sent
        and after["packetsReceived"] > before_received
        and call.rtp_received > far_before
        and call.audio_energy() > 100
    )


def capacity_level(browser: Browser, far_end: FarEnd, calls: int) -> dict[str, Any]:
    far_end.drain_incoming()
    phones: list[Phone] = []
    started = time.monotonic()
    with contextlib.ExitStack() as browsers:
        # One Chromium starts at most 16 fake audio sources ("NotReadableError: Could not start
        # audio source" from the 17th): the pages are spread over browsers, as agents' PCs are.
        started_browsers = [
            browsers.enter_context(Browser(share_with=browser)) for _ in range(-(-calls // PAGES_PER_BROWSER))
        ]
        return _capacity_level(far_end, calls, started_browsers, phones, started)


def _capacity_level(
    far_end: FarEnd, calls: int, browsers: list[Browser], phones: list[Phone], started: float
) -> dict[str, Any]:
    try:
        for index in range(calls):
            dn = ("1002", "1003")[index % 2]
            phone = browsers[index // PAGES_PER_BROWSER].new_phone(dn, DN_PASSWORDS[dn])
            phones.append(phone)
        for phone in phones:
            phone.wait_registered(20)
        for index, phone in enumerate(phones):
            phone.call(f"5553{index:03d}")
        incoming: dict[str, FarEndCall] = {}
        for _ in phones:
            call = far_end.wait_incoming(30)
            incoming[call.to_user] = call
        for phone in phones:
            phone.wait_event("confirmed", 30, fail_on=("failed",))
        time.sleep(2)
        busy = cpu_busy(2.0)
        with_audio = sum(audio_ok(phone, incoming[f"5553{i:03d}"]) for i, phone in enumerate(phones))
        return {"calls": calls, "with_audio": with_audio, "cpu_busy": busy, "seconds": time.monotonic() - started}
    except (AssertionError, TimeoutError) as error:
        return {"calls": calls, "with_audio": 0, "error": str(error)[:500], "seconds": time.monotonic() - started}
    finally:
        for phone in phones:
            phone.close()


def _calls_up(browser: Browser, far_end: FarEnd, users: dict[str, str]) -> list[tuple[Phone, FarEndCall, int]]:
    """One page per DN, each on an outbound call with audio both ways."""
    far_end.drain_incoming()
    phones = [browser.new_phone(dn, password) for dn, password in users.items()]
    for phone in phones:
        phone.wait_registered(20)
    marks = [phone.call(f"5554{index:03d}") for index, phone in enumerate(phones)]
    incoming = {call.to_user: call for call in (far_end.wait_incoming(30) for _ in phones)}
    for phone, mark in zip(phones, marks, strict=True):
        phone.wait_event("confirmed", 30, since=mark, fail_on=("failed",))
    return [(phone, incoming[f"5554{i:03d}"], marks[i]) for i, phone in enumerate(phones)]


def _dropped(phone: Phone, call: FarEndCall, mark: int) -> bool:
    """The call ended without its agent hanging up, or its audio stopped."""
    ended = [e for e in phone.events(mark) if e["type"] in ("ended", "failed")]
    return bool(ended) or call.ended or not audio_ok(phone, call)


def _through_switch(
    browser: Browser,
    far_end: FarEnd,
    users: dict[str, str],
    switch: Callable[[], Any],
    target: str,
    *,
    waits_for_calls: bool,
) -> dict[str, Any]:
    """N calls up, `switch` runs in a thread; each agent hangs up in turn once nginx moved (a
    procedure that does not wait for calls is let finish first, so that it is judged by its end)."""
    calls = _calls_up(browser, far_end, users)
    dropped: list[str] = []
    outcome: dict[str, Any] = {}

    def run_switch() -> None:
        started = time.monotonic()
        outcome["result"] = switch()
        outcome["seconds"] = round(time.monotonic() - started, 2)

    thread = threading.Thread(target=run_switch, daemon=True)
    try:
        thread.start()
        wait_for(f"nginx pointing at {target}", lambda: _healthz_is(target), timeout=300)
        if not waits_for_calls:
            thread.join(timeout=600)
        time.sleep(2)
        for dn, (phone, call, mark) in zip(users, calls, strict=True):
            if _dropped(phone, call, mark):
                dropped.append(dn)
            else:
                phone.hangup()
                call.wait_ended(10)
            time.sleep(2)
        thread.join(timeout=600)
    finally:
        for phone, _, _ in calls:
            phone.close()
    return {"calls": len(calls), "dropped": len(dropped), "dropped_dns": dropped, "seconds": outcome.get("seconds")}


def _healthz_is(mode: str) -> bool | None:
    try:
        return healthz() == f"ok {mode}" or None
    except OSError:
        return None


def switch_with_calls(
    lab: Lab, browser: Browser, far_end: FarEnd, users: dict[str, str], files: Path, *, start: str
) -> dict[str, Any]:
    """Our switch away from `start`, then the seed's procedure back to it, each with one call per
    DN of `users` up (see the module doc). Empty `users`: the lab's own DNs, no provisioning."""
    target = "static" if start == "kamailio" else "kamailio"
    agents = users or LAB_USERS
    if users:
        lab.ensure(start, users)
    capture(files / start)
    playbook = "rollback.yml" if target == "static" else "revert.yml"
    log(f"calls: {playbook} with {len(agents)} calls up")
    ours = _through_switch(
        browser, far_end, agents, lambda: lab.playbook(playbook, users), target, waits_for_calls=True
    )
    seed_step = seed_revert if start == "kamailio" else seed_rollback
    log(f"calls: the seed's procedure back to {start} mode with {len(agents)} calls up")
    seed = _through_switch(browser, far_end, agents, lambda: seed_step(files / start), start, waits_for_calls=False)
    lab.state = None  # the seed's procedure left the lab as a playbook would not: provision again
    return {"ours": {**ours, "playbook": playbook}, "seed": {**seed, "to": start}}


def run(cfg: Config, lab: Lab) -> dict[str, Any]:
    count = 3 if cfg.mode == "smoke" else 50
    ladder = [2] if cfg.mode == "smoke" else [10, 20, 30, 40, 60]
    result: dict[str, Any] = {"setup": {}, "capacity": {"ladder": ladder, "levels": []}}

    with Browser() as browser, FarEnd(bind=GENESYS, sip_port=FAR_END_PORT) as far_end:
        far_end.serve(answer_after=0.0, behaviour="answer")
        # The mode the lab is in first: one switch fewer.
        modes = ["static", "kamailio"] if lab.state and lab.state[0] == "static" else ["kamailio", "static"]
        for mode in modes:
            lab.ensure(mode, {})
            log(f"calls: {count} set-ups in {mode} mode")
            result["setup"][mode] = setup_delays(browser, far_end, count)
        for level in ladder:
            log(f"calls: {level} concurrent calls ({modes[-1]} mode)")
            figures = capacity_level(browser, far_end, level)
            result["capacity"]["levels"].append(figures)
            if figures["with_audio"] < level:
                break
        result["capacity"]["mode"] = modes[-1]
        # Full runs only: `make test` already proves the no-cut switch with browsers
        # (tests/integration/test_switch_calls.py) and its time budget is spent.
        if cfg.mode != "smoke":
            users = bench_users(SWITCH_CALLS_FULL)
            result["switch"] = switch_with_calls(lab, browser, far_end, users, cfg.raw / "seed-calls", start=modes[-1])
    passed = [lv["calls"] for lv in result["capacity"]["levels"] if lv["with_audio"] == lv["calls"]]
    result["max_concurrent_calls_with_audio"] = max(passed, default=0)
    result["capacity"]["capped_by_ladder"] = bool(passed) and max(passed) == ladder[-1]
    kamailio, static = result["setup"]["kamailio"], result["setup"]["static"]
    result["setup_p95_ratio_kamailio_vs_static"] = ratio(kamailio["p95_ms"], static["p95_ms"])
    result["target_p95_ratio"] = TARGET_P95_RATIO
    switch = result.get("switch") or {}
    result["calls_dropped_by_switch"] = (switch.get("ours") or {}).get("dropped")
    result["calls_dropped_by_seed_switch"] = (switch.get("seed") or {}).get("dropped")
    result["switch_with_calls_s"] = (switch.get("ours") or {}).get("seconds")
    return result
