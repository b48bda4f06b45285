"""Benchmark 3: what a switch costs in wall time on a warm lab (no clients).

revert.yml and rollback.yml alternate `switch_reps` times (medians reported); right after the
first of each, an idempotent re-run must report changed=0 (parsed from the PLAY RECAP).
Baseline in the same run, on the same lab: the seed's manual procedure (tests/lab/seed.py,
`docker compose restart nginx asterisk` + start/stop Kamailio) with the files our playbooks
rendered, as many times as ours ran. Beyond `switch_min_reps`, repetitions run only while the
time budget allows.

With switch_reps 0 (the smoke run) no switch runs here: the figures are built, in the same
form, from the four timed switches of the gap benchmark (with clients), to save four runs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lab.seed import capture, seed_revert, seed_rollback

from bench.common import LAB_USERS, Config, Lab, bench_users, log, median, ratio

SEED_PAIR_S = 25  # a rough cost of one seed revert + rollback, for the time budget


def from_gap(cfg: Config) -> dict[str, Any]:
    """The figures from switch_gap.json's timed switches (smoke: no separate runs)."""
    switches = json.loads((cfg.out / "switch_gap.json").read_text())["switches"]
    ours = {d: [switches[f"ours_{d}"]["switch"]] for d in ("revert", "rollback")}
    seed = {d: [switches[f"seed_{d}"]["switch"]["seconds"]] for d in ("revert", "rollback")}
    note = "taken from switch_gap (timed switches with clients)"
    return summarise(ours, seed, {}, note=note, provision=None, bench_dns=cfg.switch_dns)


def summarise(
    ours: dict[str, list[dict[str, Any]]],
    seed: dict[str, list[float]],
    idempotent: dict[str, dict[str, Any]],
    *,
    note: str | None,
    provision: dict[str, Any] | None,
    bench_dns: int,
) -> dict[str, Any]:
    medians = {
        "ours_revert_s": median([r["seconds"] for r in ours["revert"]]),
        "ours_rollback_s": median([r["seconds"] for r in ours["rollback"]]),
        "seed_revert_s": median(seed["revert"]),
        "seed_rollback_s": median(seed["rollback"]),
    }
    return {
        "benchmark": "switch_cost",
        "dns_provisioned": len({**LAB_USERS, **bench_users(bench_dns)}),
        "reps": len(ours["revert"]),
        "note": note,
        "provision": provision,
        "median": medians,
        "revert_time_ratio_vs_seed": ratio(medians["ours_revert_s"], medians["seed_revert_s"]),
        "rollback_time_ratio_vs_seed": ratio(medians["ours_rollback_s"], medians["seed_rollback_s"]),
        "idempotent": {
            name: {"seconds": r["seconds"], "changed": r["changed"], "ok": r["changed"] == 0 and r["returncode"] == 0}
            for name, r in idempotent.items()
        },
        "steps_median": {name: steps_median(runs) for name, runs in ours.items()},
        "ours": ours,
        "seed": seed,
    }


def steps_median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per step (profile_tasks, bench.common.parse_steps), the median seconds over the runs that
    have it; and the median count and seconds of the shorter tasks."""
    profiles = [r.get("profile") or {} for r in runs]
    names = sorted({name for p in profiles for name in p.get("steps", {})})
    steps = {name: median([p["steps"][name] for p in profiles if name in p.get("steps", {})]) for name in names}
    other = [p["other_tasks"] for p in profiles if "other_tasks" in p]
    return {
        "steps": dict(sorted(steps.items(), key=lambda item: -(item[1] or 0))),
        "other_tasks": {
            "count": median([o["count"] for o in other]),
            "seconds": median([o["seconds"] for o in other]),
        },
        "runs": len(profiles),
    }


def run(cfg: Config, lab: Lab, reserve_s: float = 0) -> dict[str, Any]:
    if cfg.switch_reps == 0:
        return from_gap(cfg)
    users = bench_users(cfg.switch_dns)
    provision = lab.ensure("static", users)
    files = cfg.raw / "seed-files-cost"
    ours: dict[str, list[dict[str, Any]]] = {"revert": [], "rollback": []}
    idempotent: dict[str, dict[str, Any]] = {}
    budget_note = None
    for rep in range(cfg.switch_reps):
        if rep >= cfg.switch_min_reps:
            pair = (median([r["seconds"] for r in ours["revert"]]) or 0) + (
                median([r["seconds"] for r in ours["rollback"]]) or 0
            )
            if cfg.left() - reserve_s < (rep + 1) * SEED_PAIR_S + pair:
                budget_note = f"stopped after {rep} repetitions: time budget"
                log(f"switch cost: {budget_note}")
                break
        ours["revert"].append(lab.playbook("revert.yml", users).as_dict())
        if rep == 0:
            capture(files / "kamailio")
            if cfg.idempotent:
                idempotent["revert"] = lab.playbook("revert.yml", users).as_dict()
        ours["rollback"].append(lab.playbook("rollback.yml", users).as_dict())
        if rep == 0:
            capture(files / "static")
            if cfg.idempotent:
                idempotent["rollback"] = lab.playbook("rollback.yml", users).as_dict()
    seed: dict[str, list[float]] = {"revert": [], "rollback": []}
    for _ in ours["revert"]:
        started = time.monotonic()
        seed_revert(files / "kamailio")
        seed["revert"].append(round(time.monotonic() - started, 2))
        started = time.monotonic()
        seed_rollback(files / "static")
        seed["rollback"].append(round(time.monotonic() - started, 2))
        log(f"switch cost: seed revert {seed['revert'][-1]} s, rollback {seed['rollback'][-1]} s")
    lab.state = ("static", frozenset({**LAB_USERS, **users}))  # the seed installed our files
    provisioned = provision.as_dict() if provision else None
    return summarise(ours, seed, idempotent, note=budget_note, provision=provisioned, bench_dns=cfg.switch_dns)
