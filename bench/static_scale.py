"""Benchmark 5: static mode at scale: Asterisk's start-up time and the time until every static
registration is Registered at the stand-in, for several DN counts.

Per size: rollback.yml with the bench DNs as extra webrtc_dns (static mode, one
type=registration per DN), then `docker compose restart asterisk`, timed until
`core waitfullybooted` answers (booted) and until `pjsip show registrations` lists every
registration as Registered. The lab's own 2 DNs are provisioned too: a size of n registers
n + 2 DNs. Sizes that need a playbook run are skipped when the time budget is short.
"""

from __future__ import annotations

import re
import time
from typing import Any

from lab import asterisk_cli, compose

from bench.common import LAB_USERS, BenchError, Config, Lab, bench_users, log, median

_REGISTERED = re.compile(r"^\s*genesys-reg-\S+.*\sRegistered\b", re.MULTILINE)


def registered_count() -> int:
    try:
        return len(_REGISTERED.findall(asterisk_cli("pjsip show registrations")))
    except AssertionError:  # Asterisk not up yet
        return 0


def booted() -> bool:
    try:
        return "fully booted" in asterisk_cli("core waitfullybooted")
    except AssertionError:
        return False


def restart_once(expected: int, timeout: float) -> dict[str, Any]:
    """Restart Asterisk; time until booted and until `expected` registrations are Registered."""
    started = time.monotonic()
    compose("restart", "asterisk", timeout=300)
    restarted = time.monotonic()
    booted_at = None
    registered_at = None
    count = 0
    timeline: list[tuple[float, int]] = []
    deadline = started + timeout
    while time.monotonic() < deadline:
        if booted_at is None:
            if booted():
                booted_at = time.monotonic()
            else:
                time.sleep(0.1)
                continue
        count = registered_count()
        timeline.append((round(time.monotonic() - started, 2), count))
        if count >= expected:
            registered_at = time.monotonic()
            break
        time.sleep(0.25)
    result = {
        "expected": expected,
        "registered": count,
        "restart_command_s": round(restarted - started, 2),
        "booted_s": round(booted_at - started, 2) if booted_at else None,
        "all_registered_s": round(registered_at - started, 2) if registered_at else None,
        "registered_after_boot_s": round(registered_at - booted_at, 2) if registered_at and booted_at else None,
        "timeline": timeline[:: max(1, len(timeline) // 60)],
    }
    log(
        f"static scale {count}/{expected} Registered: booted {result['booted_s']} s, all {result['all_registered_s']} s"
    )
    return result


def estimate_s(size: int, needs_playbook: bool, reps: int) -> float:
    """A rough cost of one size (seconds), for the time budget."""
    return (60 + size / 25 if needs_playbook else 0) + reps * (15 + size / 100)


def run(cfg: Config, lab: Lab, reserve_s: float = 0) -> dict[str, Any]:
    current = len(lab.state[1] - set(LAB_USERS)) if lab.state and lab.state[0] == "static" else None
    sizes = sorted(cfg.scale_sizes, key=lambda s: (s != current, s))
    results: list[dict[str, Any]] = []
    for size in sizes:
        users = bench_users(size)
        needs = lab.state != ("static", frozenset({**LAB_USERS, **users}))
        cost = estimate_s(size, needs, cfg.scale_reps)
        if cfg.left() - reserve_s < cost and results:
            log(f"static scale: {size} DNs skipped, time budget ({cfg.left():.0f} s left, needs ~{cost:.0f} s)")
            results.append({"bench_dns": size, "skipped": "time budget"})
            continue
        expected = len({**LAB_USERS, **users})
        # rollback.yml waits mode_switch_static_wait (default 60 s) for every static registration,
        # and its bridge must outlast that wait by 60 s (the switch's own input check).
        wait = max(60, expected // 10)
        extra = {"mode_switch_static_wait": wait, "mode_switch_bridge_expires": max(300, wait + 60)}
        try:
            provision = lab.ensure("static", users, extra)
            restarts = [restart_once(expected, timeout=90 + expected / 20) for _ in range(cfg.scale_reps)]
        except (BenchError, AssertionError, OSError) as error:
            log(f"static scale: {size} DNs failed: {error}")
            results.append({"bench_dns": size, "registrations": expected, "error": str(error)[:1500]})
            lab.state = None
            continue
        complete = [r for r in restarts if r["all_registered_s"] is not None]
        results.append(
            {
                "bench_dns": size,
                "registrations": expected,
                "provision": provision.as_dict() if provision else None,
                "mode_switch_static_wait": wait,
                "reps": len(restarts),
                "median_booted_s": median([r["booted_s"] for r in restarts if r["booted_s"] is not None]),
                "median_all_registered_s": median([r["all_registered_s"] for r in complete]),
                "incomplete_restarts": len(restarts) - len(complete),
                "median_registered_after_boot_s": median(
                    [r["registered_after_boot_s"] for r in complete if r["registered_after_boot_s"] is not None]
                ),
                "restarts": restarts,
            }
        )
    if not any("restarts" in r for r in results):
        raise BenchError(f"static scale: no size measured: {results}")
    return {"benchmark": "static_scale", "sizes": sorted(results, key=lambda r: r["bench_dns"])}
