"""Benchmark 7: Genesys goes away and comes back (issue 28): how long until every DN is bound again.

Kamailio mode, `outage_dns` live JsSIP agents over wss (600 s registrations), Genesys at two
addresses (the lab's stand-ins 127.0.0.81 and 127.0.0.82, the first preferred):
  failover     the first goes silent: seconds until every DN is bound at the second
  failback     the first answers again, having forgotten every binding meanwhile: seconds until
               every DN is bound at the first again
  silent       both go silent for `silent_s`, forget every binding, answer again: seconds until all
               are bound again
  unavailable  the same with 503 to everything for `unavailable_s`
Static mode, the same DNs as Asterisk's static registrations: silent and unavailable (the
registration monitor's probe has Asterisk send them again).

Each figure: from the moment the stand-in answers again (or, for failover, stops answering) to
the first 100 ms sample of its registrar that holds every DN (resolution < 0.1 s plus one RPC),
`reps` times; the target is 10 s + N/200 s. Baseline in the same run: the time the same agents
took to be bound at Genesys when they registered in the first place.
The smoke run: 5 agents, one 503 outage of 5 s in kamailio mode (the others are not run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab import (
    GENESYS_B,
    STANDIN_B_RPC,
    STANDIN_RPC,
    genesys_bindings,
    held_clients,
    run_client,
    standin_forget,
    standin_state,
)

from bench.common import BenchError, Config, Lab, bench_users, log, median

SAMPLE_S = 0.1
SILENT, UNAVAILABLE, UP = 1, 2, 0


def set_state(state: int, *rpcs: str) -> None:
    for rpc in rpcs:
        standin_state(state, rpc)


def wipe(dns: set[str], *rpcs: str) -> None:
    """The registrar forgets every binding of these DNs (a restart)."""
    for rpc in rpcs:
        standin_forget(dns, rpc)


def bound(rpc: str, static: bool) -> set[str]:
    """DNs holding the mode's contact at a stand-in (static: Asterisk's ;line= contact)."""
    return {
        dn
        for dn, bindings in genesys_bindings(rpc).items()
        if any((";line=" in b["contact"]) == static for b in bindings)
    }


def seconds_until(what: str, condition: Callable[[], bool], limit: float) -> float:
    """Seconds from now to the first sample where `condition` holds; BenchError past 3x the limit."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > 3 * limit:
            raise BenchError(f"{what}: not within {3 * limit:.0f} s")
        time.sleep(SAMPLE_S)
    return round(time.monotonic() - started, 2)


def outage(dns: set[str], state: int, down_s: float, static: bool, limit: float) -> float:
    """Both stand-ins stop (silent or 503), forget every binding, answer again: seconds to all bound."""
    set_state(state, STANDIN_RPC, STANDIN_B_RPC)
    try:
        wipe(dns, STANDIN_RPC, STANDIN_B_RPC)
        time.sleep(down_s)
    finally:
        set_state(UP, STANDIN_B_RPC, STANDIN_RPC)
    return seconds_until("all bound again", lambda: bound(STANDIN_RPC, static) >= dns, limit)


def failover(dns: set[str], limit: float) -> tuple[float, float]:
    """The first address goes silent: seconds to all bound at the second; then back."""
    set_state(SILENT, STANDIN_RPC)
    try:
        moved = seconds_until("all bound at the second address", lambda: bound(STANDIN_B_RPC, False) >= dns, limit)
        wipe(dns, STANDIN_RPC)
    finally:
        set_state(UP, STANDIN_RPC)
    back = seconds_until("all bound at the first address again", lambda: bound(STANDIN_RPC, False) >= dns, limit)
    wipe(dns, STANDIN_B_RPC)  # the next repetition starts with nothing at the second address
    return moved, back


def figures(values: list[float], limit: float) -> dict[str, Any]:
    return {
        "seconds": values,
        "median": median(values),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "within_limit": bool(values) and max(values) <= limit,
    }


def run(cfg: Config, lab: Lab) -> dict[str, Any]:
    smoke = cfg.mode == "smoke"
    users = bench_users(5 if smoke else cfg.switch_dns)
    dns = set(users)
    limit = 10 + len(dns) / 200
    reps = 1 if smoke else 3
    silent_s, unavailable_s = 30.0, (5.0 if smoke else 10.0)
    result: dict[str, Any] = {
        "benchmark": "genesys_outage",
        "dns": len(dns),
        "limit_s": limit,
        "reps": reps,
        "silent_s": silent_s,
        "unavailable_s": unavailable_s,
        "kamailio": {},
        "static": {},
    }
    extra = None if smoke else {"webrtc_genesys_failover_addresses": [GENESYS_B]}
    lab.playbook("revert.yml", users, extra)
    lab.state = None  # provisioned with extra settings: the next benchmark provisions again
    launched = time.monotonic()
    with held_clients(users, "--expires", "600", reconnect=False):
        seconds_until("the agents bound", lambda: bound(STANDIN_RPC, False) >= dns, limit)
        registered = round(time.monotonic() - launched, 2)
        result["baseline_first_bound_s"] = registered
        log(f"genesys outage: {len(dns)} agents bound in {registered} s (baseline)")
        kamailio: dict[str, list[float]] = {"failover": [], "failback": [], "silent": [], "unavailable": []}
        for _ in range(reps):
            if not smoke:
                moved, back = failover(dns, limit)
                kamailio["failover"].append(moved)
                kamailio["failback"].append(back)
                kamailio["silent"].append(outage(dns, SILENT, silent_s, False, limit))
            kamailio["unavailable"].append(outage(dns, UNAVAILABLE, unavailable_s, False, limit))
            log(f"genesys outage, kamailio mode: { ({k: v[-1] for k, v in kamailio.items() if v}) }")
        result["kamailio"] = {name: figures(values, limit) for name, values in kamailio.items() if values}
    # The held clients stop without un-REGISTERing; their 600 s registrations would keep Kamailio
    # refreshing their bindings at Genesys after this benchmark: each agent logs out.
    run_client(users, "unregister", timeout=120)
    if not smoke:
        lab.ensure("static", users)
        seconds_until("every static registration bound", lambda: bound(STANDIN_RPC, True) >= dns, limit)
        static: dict[str, list[float]] = {"silent": [], "unavailable": []}
        for _ in range(reps):
            static["silent"].append(outage(dns, SILENT, silent_s, True, limit))
            static["unavailable"].append(outage(dns, UNAVAILABLE, unavailable_s, True, limit))
            log(f"genesys outage, static mode: { ({k: v[-1] for k, v in static.items()}) }")
        result["static"] = {name: figures(values, limit) for name, values in static.items()}
    every = [f for mode in ("kamailio", "static") for f in result[mode].values()]
    result["all_within_limit"] = bool(every) and all(f["within_limit"] for f in every)
    slowest = max((f["max"] for f in every), default=None)
    result["slowest_s"] = slowest
    result["slowest_ratio_vs_baseline"] = (
        round(slowest / registered, 2) if slowest is not None and registered > 0 else None
    )
    return result
