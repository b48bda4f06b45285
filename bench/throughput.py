"""Benchmark 1: registration throughput and delay, kamailio mode vs Asterisk alone.

N bench DNs are provisioned in Asterisk by the roles (revert.yml with extra webrtc_dns).
SIPp offers registrations with digest auth at a rising rate to two targets in the same run:
  kamailio  Kamailio's UDP SIP listener (relays to Asterisk, mirrors at the stand-in)
  direct    Asterisk's UDP SIP listener (Asterisk alone)
Each rate runs `reps` times per target (the targets interleaved); a target stops at the first
rate it does not sustain: a median success ratio below 99.9 %, or a median achieved rate below
95 % of the offered one (SIPp could not place the registrations as fast as offered because
answers came too slowly: the target is saturated even if every registration ends well).
Around every run, Kamailio's counters and memory and the lab sockets' drops are read
(`kamstats.py`). Afterwards a verification pass: the stand-in
is emptied, N registrations are offered through Kamailio at its highest sustained rate, and the
DNs bound at the stand-in are counted (must be N).
"""

from __future__ import annotations

import math
import time
from typing import Any

from lab import GATEWAY, forwarded_bound, restart_standin

from bench import kamstats
from bench.common import (
    ASTERISK_SIP_PORT,
    KAMAILIO_SIP_PORT,
    BenchError,
    Config,
    Lab,
    bench_users,
    log,
    median,
    ratio,
)
from bench.sipp import clear_contacts, run_scenario

TARGETS = {"kamailio": KAMAILIO_SIP_PORT, "direct": ASTERISK_SIP_PORT}
SUCCESS_THRESHOLD = 0.999
# A rate is sustained only if it was also achieved: SIPp paces new registrations by answers
# (at most `-l` in flight), so a saturated target shows as a lower achieved rate, with every
# registration still ending well (direct at 4800/s offered: 99.98 % success, 3216/s achieved).
ACHIEVED_THRESHOLD = 0.95
# Kamailio keeps each finished transaction for wt_timer (5 s): before a high-rate run through
# it, let the previous run's transactions expire so runs do not inherit each other's memory.
KAMAILIO_DRAIN_S = 5.5
# What the summary quotes of each path at the highest rate both sustained.
AT_COMMON_KEYS = ("p50_ms", "p95_ms", "p99_ms", "achieved_rate", "cpu_ms_per_registration", "udp_drops")


def summarise_rate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repetitions of one rate for one target."""

    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return median(values)

    def med_rtt(key: str) -> float | None:
        values = [r["rtt_ms"][key] for r in runs if r["rtt_ms"].get(key) is not None]
        return median(values)

    def med_cpu() -> dict[str, float]:
        measured = [r["cpu_ms_per_registration"] for r in runs if r.get("cpu_ms_per_registration")]
        parts = {part for m in measured for part in m}
        per_part = {part: median([m.get(part, 0.0) for m in measured]) for part in sorted(parts)}
        return {part: value for part, value in per_part.items() if value is not None}

    success = med("success_ratio") or 0.0
    achieved = med("achieved_rate")
    offered = runs[0]["offered_rate"]
    drops = [r["kamailio_and_sockets"]["udp_drops"] for r in runs if r.get("kamailio_and_sockets")]
    return {
        "offered_rate": offered,
        "reps": len(runs),
        "calls": runs[0]["calls"],
        "success_ratio": success,
        "sustained": success >= SUCCESS_THRESHOLD and (achieved or 0.0) >= ACHIEVED_THRESHOLD * offered,
        "achieved_rate": achieved,
        "failed": med("failed"),
        "retransmissions": med("retransmissions"),
        "p50_ms": med_rtt("p50"),
        "p95_ms": med_rtt("p95"),
        "p99_ms": med_rtt("p99"),
        "max_ms": med_rtt("max"),
        # where the time goes: CPU milliseconds per registration by part (median over reps)
        "cpu_ms_per_registration": med_cpu(),
        # datagrams the kernel dropped at each socket (full receive buffer), the most of any rep
        "udp_drops": {sock: max(d[sock] for d in drops) for sock in drops[0]} if drops else {},
        # Kamailio's counters and memory over the last repetition (kamstats.py)
        "kamailio": runs[-1].get("kamailio_and_sockets"),
    }


def run(cfg: Config, lab: Lab) -> dict[str, Any]:
    users = bench_users(cfg.n_dns)
    provision = lab.ensure("kamailio", users)
    restart_standin()
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
    per_rate: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
    active = set(TARGETS)
    last_kamailio_end = 0.0
    for rate in cfg.rates:
        if not active:
            break
        calls = max(cfg.n_dns, math.ceil(rate * cfg.min_run_s))
        this_rate: dict[str, list[dict[str, Any]]] = {t: [] for t in active}
        for rep in range(cfg.reps):
            for target in sorted(active, reverse=True):  # kamailio, then direct
                if target == "kamailio" and rate >= 800:
                    time.sleep(max(0.0, KAMAILIO_DRAIN_S - (time.monotonic() - last_kamailio_end)))
                label = f"{target}-{rate}-{rep + 1}"
                before = kamstats.snapshot()
                figures = run_scenario(
                    cfg, "register", users, GATEWAY, TARGETS[target], rate=rate, calls=calls, label=label
                )
                figures["kamailio_and_sockets"] = kamstats.since(before, kamstats.snapshot())
                if target == "kamailio":
                    last_kamailio_end = time.monotonic()
                figures["rep"] = rep + 1
                runs[target].append(figures)
                this_rate[target].append(figures)
        for target, target_runs in this_rate.items():
            summary = summarise_rate(target_runs)
            per_rate[target].append(summary)
            if not summary["sustained"]:
                log(
                    f"throughput: {target} not sustained at {rate}/s (success {summary['success_ratio']:.2%},"
                    f" achieved {summary['achieved_rate']}/s), stops"
                )
                active.discard(target)

    def best(target: str) -> dict[str, Any] | None:
        sustained = [r for r in per_rate[target] if r["sustained"]]
        return sustained[-1] if sustained else None

    best_k, best_d = best("kamailio"), best("direct")
    max_k = best_k["offered_rate"] if best_k else None
    max_d = best_d["offered_rate"] if best_d else None
    # The delays at the highest rate both targets sustained: the same offered load.
    common = [r for r in (per_rate["kamailio"]) if r["sustained"]]
    direct_rates = {r["offered_rate"]: r for r in per_rate["direct"] if r["sustained"]}
    common = [r for r in common if r["offered_rate"] in direct_rates]
    at_common = None
    if common:
        k = common[-1]
        d = direct_rates[k["offered_rate"]]
        at_common = {
            "offered_rate": k["offered_rate"],
            # Kamailio's own counters only where the run went through it
            "kamailio": {key: k[key] for key in (*AT_COMMON_KEYS, "kamailio")},
            "direct": {key: d[key] for key in AT_COMMON_KEYS},
        }
    verify = verification(cfg, users, max_k or cfg.rates[0])
    cleanup = clear_contacts(cfg, users)
    capped = {t: bool(per_rate[t]) and all(r["sustained"] for r in per_rate[t]) for t in TARGETS}
    return {
        "benchmark": "throughput",
        "n_dns": cfg.n_dns,
        "rates": cfg.rates,
        "reps": cfg.reps,
        "success_threshold": SUCCESS_THRESHOLD,
        "achieved_threshold": ACHIEVED_THRESHOLD,
        "kamailio_vars": cfg.kamailio_vars,
        "provision": provision.as_dict() if provision else None,
        "max_sustained_rate": {"kamailio": max_k, "direct": max_d},
        "capped_by_ladder": capped,
        "throughput_ratio_kamailio_vs_direct": ratio(max_k, max_d),
        "achieved_ratio_at_max": ratio(
            best_k["achieved_rate"] if best_k else None, best_d["achieved_rate"] if best_d else None
        ),
        "at_highest_common_rate": at_common,
        "per_rate": per_rate,
        "verification": verify,
        "lost_dns": verify["lost_dns"],
        "cleanup": cleanup,
        "runs": runs,
    }


def verification(cfg: Config, users: dict[str, str], rate: int) -> dict[str, Any]:
    """Empty the stand-in, register every DN once through Kamailio, count the DNs bound."""
    restart_standin()
    dns = sorted(users)
    figures = run_scenario(
        cfg, "register", users, GATEWAY, KAMAILIO_SIP_PORT, rate=rate, calls=len(users), label=f"verify-{rate}"
    )
    deadline = time.monotonic() + 15
    bound: set[str] = set()
    while time.monotonic() < deadline:
        bound = forwarded_bound(dns)
        if len(bound) == len(dns):
            break
        time.sleep(0.5)
    if not figures["successful"]:
        raise BenchError(f"verification pass registered nothing: {figures}")
    return {
        "rate": rate,
        "sipp": {k: figures[k] for k in ("calls", "successful", "failed", "retransmissions", "success_ratio")},
        "bound_at_standin": len(bound),
        "lost_dns": len(dns) - len(bound),
        "missing_sample": sorted(set(dns) - bound)[:20],
    }
