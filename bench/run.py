"""Run the benchmarks on the embedded lab and write bench/results (see bench/README.md).

    .venv/bin/python -m bench.run --mode full            # make bench: N=1000 DNs, M=200 clients
    .venv/bin/python -m bench.run --mode smoke --out DIR # N=20, M=5, one repetition
    .venv/bin/python -m bench.run --only throughput,websocket --budget-min 20

Order: throughput, websocket, static_scale, switch_gap, switch_cost, calls, genesys_outage; then the lab is put back
in kamailio mode with the lab inventory as it is (revert.yml without extra vars).
"""

from __future__ import annotations

import argparse
import datetime
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import restart_standin

from bench import ROOT, calls, genesys_outage, static_scale, switch_cost, switch_gap, throughput, websocket
from bench.common import LAB_USERS, BenchError, Config, Lab, log, preset, write_json
from bench.report import load
from bench.report import write as write_report
from bench.sipp import clear_contacts

BENCHES = ("throughput", "websocket", "static_scale", "switch_gap", "switch_cost", "calls", "genesys_outage")
# What a run writes into --out (raw per-run files go under tmp/): a whole run starts by
# removing them, so the directory only ever holds one invocation's record.
OUTPUTS = (
    *(f"{b}.json" for b in BENCHES),
    *("summary.json", "summary.md", "registration_delay.png", "switch_bindings.png"),
)
# Rough costs (seconds) the time budget keeps free for what follows a benchmark.
RESTORE_S = 100
GAP_S = 300
SWITCH_PAIR_S = 120


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("full", "smoke"), default="full")
    parser.add_argument(
        "--out", type=Path, help="results directory (default: bench/results, smoke: bench/results/tmp/smoke)"
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--budget-min", type=float, help="time budget in minutes: optional parts are skipped to fit")
    parser.add_argument("--n", type=int, help="DNs for the SIPp benchmark")
    parser.add_argument("--m", type=int, help="concurrent wss clients (websocket)")
    parser.add_argument("--gap-clients", type=int, help="live clients in switch_gap (default 200; smoke 5)")
    parser.add_argument("--rates", help="SIPp rate ladder, e.g. 100,200,400")
    parser.add_argument("--reps", type=int, help="SIPp repetitions per rate")
    parser.add_argument("--switch-reps", type=int, help="repetitions of each switch (switch_cost)")
    parser.add_argument("--ws-reps", type=int, help="rounds per WebSocket path")
    parser.add_argument("--scale-reps", type=int, help="Asterisk restarts per static scale size")
    parser.add_argument("--scale-sizes", help="static scale DN counts, e.g. 100,1000,3000")
    parser.add_argument(
        "--no-kamailio-log-sequence",
        action="store_true",
        help="kamailio_log_sequence: false (no per-request NOTICE lines; the role's template must render it)",
    )
    parser.add_argument("--no-restore", action="store_true", help="leave the lab as the last benchmark left it")
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> Config:
    out = args.out or (ROOT / ("bench/results" if args.mode == "full" else "bench/results/tmp/smoke"))
    cfg = preset(args.mode, out.resolve())
    if args.n:
        cfg.n_dns = args.n
        if args.mode == "smoke":
            cfg.switch_dns = args.n
    if args.m:
        cfg.m_clients = args.m
    if args.gap_clients:
        cfg.gap_clients = args.gap_clients
        cfg.switch_dns = max(cfg.switch_dns, args.gap_clients)
    if args.rates:
        cfg.rates = [int(r) for r in args.rates.split(",")]
    if args.reps:
        cfg.reps = args.reps
    if args.switch_reps is not None:
        cfg.switch_reps = args.switch_reps
        cfg.switch_min_reps = min(cfg.switch_min_reps, args.switch_reps)
    if args.ws_reps:
        cfg.ws_reps = args.ws_reps
    if args.scale_reps:
        cfg.scale_reps = args.scale_reps
    if args.scale_sizes:
        cfg.scale_sizes = [int(s) for s in args.scale_sizes.split(",")]
    if args.no_kamailio_log_sequence:
        cfg.kamailio_vars["kamailio_log_sequence"] = False
    if args.budget_min:
        cfg.budget_s = args.budget_min * 60
    cfg.m_clients = min(cfg.m_clients, cfg.n_dns)
    cfg.gap_clients = min(cfg.gap_clients, cfg.switch_dns)
    return cfg


def reserve_after(name: str, selected: list[str], cfg: Config, restore: bool) -> float:
    """Seconds to keep free for the benchmarks after `name` (at their minimum)."""
    later = selected[selected.index(name) + 1 :]
    seconds = RESTORE_S if restore else 0.0
    if "switch_gap" in later:
        seconds += GAP_S
    if "switch_cost" in later:
        seconds += cfg.switch_min_reps * SWITCH_PAIR_S + (60 if cfg.idempotent else 0)
    return seconds


def run_one(name: str, cfg: Config, lab: Lab, reserve: float) -> dict[str, Any]:
    with_reserve: dict[str, Callable[[Config, Lab, float], dict[str, Any]]] = {
        "static_scale": static_scale.run,
        "switch_cost": switch_cost.run,
    }
    if name in with_reserve:
        return with_reserve[name](cfg, lab, reserve)
    plain: dict[str, Callable[[Config, Lab], dict[str, Any]]] = {
        "throughput": throughput.run,
        "websocket": websocket.run,
        "switch_gap": switch_gap.run,
        "calls": calls.run,
        "genesys_outage": genesys_outage.run,
    }
    return plain[name](cfg, lab)


def restore(lab: Lab) -> None:
    """Kamailio mode with the lab inventory as it is: its own DNs only, default settings."""
    restart_standin()
    lab.playbook("revert.yml", None)
    restart_standin()


def interrupt_on_sigterm() -> None:
    """SIGTERM (a CI timeout, `kill`) stops the run like Ctrl-C: recorded, not lost."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def run_selected(
    selected: list[str], cfg: Config, lab: Lab, restore_after: bool, date: str
) -> tuple[dict[str, str], bool]:
    """Run each benchmark, writing its result file; (errors by benchmark, interrupted)."""
    errors: dict[str, str] = {}
    for name in selected:
        bench_started = time.monotonic()
        log(f"=== {name} ({cfg.left():.0f} s of budget left)")
        try:
            result = run_one(name, cfg, lab, reserve_after(name, selected, cfg, restore_after))
        except KeyboardInterrupt as error:
            errors[name] = f"interrupted ({str(error) or 'Ctrl-C'}) after {time.monotonic() - bench_started:.0f} s"
            for later in selected[selected.index(name) + 1 :]:
                errors[later] = "not run: the run was interrupted"
            log(f"{name} INTERRUPTED: recording what ran, the lab is left as it is")
            return errors, True
        except Exception as error:
            errors[name] = f"{type(error).__name__}: {error}"[:2000]
            (cfg.raw / f"{name}.error.txt").write_text(traceback.format_exc())
            log(f"{name} FAILED: {errors[name][:500]}")
            lab.state = None
            continue
        result["seconds"] = round(time.monotonic() - bench_started, 1)
        result["date"] = date
        write_json(cfg.out / f"{name}.json", result)
        log(f"{name} done in {result['seconds']} s")
    return errors, False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    cfg = configure(args)
    selected = [b for b in BENCHES if not args.only or b in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(BENCHES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    # The tree as it was measured: read before the run writes its own result files into it.
    measured = commit_info()
    start_record(cfg.out, whole=not args.only)
    started = time.monotonic()
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    log(f"{cfg.mode} run of {', '.join(selected)} into {cfg.out}")
    lab = Lab(cfg)
    try:  # stale contacts of the lab's own DNs would make the first revert wait for them
        clear_contacts(cfg, LAB_USERS)
    except (BenchError, OSError, AssertionError, subprocess.SubprocessError) as error:
        log(f"could not clear the lab DNs' contacts: {error}")
    errors, interrupted = run_selected(selected, cfg, lab, not args.no_restore, date)
    if interrupted:
        errors["restore"] = "not run: the run was interrupted (the lab is left as the interrupted benchmark left it)"
    elif not args.no_restore:
        try:
            restore(lab)
        except Exception as error:
            errors["restore"] = f"{type(error).__name__}: {error}"[:2000]
            log(f"restore FAILED: {errors['restore'][:500]}")
    invocation = {
        "started": date,
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": cfg.describe(),
        "results": [b for b in selected if b not in errors],
        "errors": errors,
        "run_seconds": round(time.monotonic() - started, 1),
        "playbook_runs": len(lab.runs),
        **measured,
    }
    write_report(cfg.out, run_info(load(cfg.out, "summary"), invocation, cfg.mode, bool(args.only)))
    return 130 if interrupted else (1 if errors else 0)


def start_record(out: Path, whole: bool) -> None:
    """A whole run starts the record afresh: every result file of the previous run goes first, so
    that no figure of an earlier run can pass for one of this run."""
    out.mkdir(parents=True, exist_ok=True)
    if whole:
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)


CHECKOUT = Path(__file__).resolve().parents[1]


def commit_info(root: Path = CHECKOUT) -> dict[str, Any]:
    """The commit the run measured, and whether the work tree held changes beside it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], check=False, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or None, "tree_clean": bool(commit) and status == ""}


def run_info(previous: dict[str, Any], invocation: dict[str, Any], mode: str, partial: bool) -> dict[str, Any]:
    """What the summary records about the runs behind its figures.

    A partial run (--only) into a directory that holds a run of the same mode replaces only the
    result files of its benchmarks: the summary keeps the earlier invocations and adds this one.
    """
    earlier: list[dict[str, Any]] = []
    if partial and previous.get("mode") == mode:
        earlier = previous.get("invocations") or []
    invocations = [*earlier, invocation]
    latest: dict[str, str] = {}
    errors: dict[str, str] = {}
    for run in invocations:
        for name in run["results"]:
            latest[name] = run["started"]
            errors.pop(name, None)
        errors.update(run["errors"])
    return {
        "date": invocations[0]["started"],
        "mode": mode,
        "config": invocations[0]["config"],
        "invocations": invocations,
        "benchmarks_run": sorted(latest),
        "errors": errors,
        "run_seconds": round(sum(run["run_seconds"] for run in invocations), 1),
        "playbook_runs": sum(run["playbook_runs"] for run in invocations),
    }


if __name__ == "__main__":
    raise SystemExit(main())
