"""The benchmarks' smoke run (`make bench-smoke`): every benchmark once, small (N=20 DNs for
SIPp, M=5 wss clients, one repetition), on the embedded lab.

It asserts only that each benchmark produced well-formed results: the files exist, the keys
are there with the right types, counts add up. No timing is asserted: timings belong in
BENCHMARKS.md (`make bench`), not in a pass/fail test on a shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lab import ROOT

N = 20
M = 5
# The smoke run takes a few minutes (five playbook runs); the default test timeout is 600 s.
pytestmark = pytest.mark.timeout(1500)
NUMBER = (int, float)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-smoke")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--mode", "smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    (out / "run.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def load(out: Path, name: str) -> dict[str, Any]:
    path = out / f"{name}.json"
    assert path.exists(), f"{name}.json missing"
    data: dict[str, Any] = json.loads(path.read_text())
    assert "error" not in data, data.get("error")
    return data


def is_number(value: Any) -> bool:
    return isinstance(value, NUMBER) and not isinstance(value, bool)


def test_summary_has_every_headline_key(results: Path) -> None:
    summary = load(results, "summary")
    for key in (
        "throughput_ratio_kamailio_vs_direct",
        "lost_dns",
        "switch_gap_ms_ours",
        "switch_gap_ms_seed",
        "revert_time_ratio_vs_seed",
        "call_setup_p95_ms_kamailio",
        "call_setup_p95_ms_static",
        "call_setup_p95_ratio_kamailio_vs_static",
    ):
        assert is_number(summary[key]), (key, summary[key])
    assert summary["errors"] == {}
    assert summary["cpu"] and summary["date"]
    assert summary["mode"] == "smoke"
    assert set(summary["targets"].values()) <= {True, False}
    # the switch-with-calls part runs in full runs only: its target is named as not measured
    assert "no call dropped by a switch" in summary["targets_not_measured"]
    assert set(summary["targets"]).isdisjoint(summary["targets_not_measured"])
    assert (results / "summary.md").read_text().startswith("| measure | value |")


def test_throughput_results_are_well_formed(results: Path) -> None:
    data = load(results, "throughput")
    assert data["n_dns"] == N
    for target in ("kamailio", "direct"):
        assert data["per_rate"][target], target
        for row in data["per_rate"][target]:
            assert 0 <= row["success_ratio"] <= 1
            assert all(is_number(row[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "achieved_rate")), row
            assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        for run in data["runs"][target]:
            assert run["successful"] + run["failed"] <= run["calls"]
    verify = data["verification"]
    assert verify["bound_at_standin"] + verify["lost_dns"] == N
    assert is_number(data["throughput_ratio_kamailio_vs_direct"])


def test_websocket_results_are_well_formed(results: Path) -> None:
    data = load(results, "websocket")
    assert data["m_clients"] == M
    for path in ("kamailio", "direct", "nginx"):
        assert data["rounds"][path], path
        for round_ in data["rounds"][path]:
            assert round_["clients"] == M
            assert 0 <= round_["registered"] <= M
    assert all(is_number(v) for v in data["median"].values()), data["median"]


def test_static_scale_results_are_well_formed(results: Path) -> None:
    data = load(results, "static_scale")
    measured = [s for s in data["sizes"] if "restarts" in s]
    assert measured
    for size in measured:
        assert size["registrations"] == size["bench_dns"] + 2
        for restart in size["restarts"]:
            assert restart["registered"] <= restart["expected"]
            assert is_number(restart["booted_s"])


def test_switch_gap_results_are_well_formed(results: Path) -> None:
    data = load(results, "switch_gap")
    assert set(data["switches"]) == {"ours_revert", "ours_rollback", "seed_revert", "seed_rollback"}
    for name, switch in data["switches"].items():
        assert is_number(switch["gap_ms"]), name
        assert 0 <= switch["dns_unbound"] <= M, name
        assert switch["samples"] > 0 and switch["timeline"], name
        assert all(0 <= bound <= M for _, bound, _ in switch["timeline"]), name


def test_switch_cost_results_are_well_formed(results: Path) -> None:
    data = load(results, "switch_cost")
    assert data["reps"] >= 1
    for who in ("ours", "seed"):
        for direction in ("revert", "rollback"):
            assert len(data[who][direction]) == data["reps"], (who, direction)
    for run in data["ours"]["revert"] + data["ours"]["rollback"]:
        assert run["returncode"] == 0 and is_number(run["seconds"]) and run["changed"] >= 0
    assert all(is_number(v) for v in data["median"].values()), data["median"]


def test_calls_results_are_well_formed(results: Path) -> None:
    calls = load(results, "calls")
    for mode in ("kamailio", "static"):
        setup = calls["setup"][mode]
        assert setup["answered"] == setup["calls"] > 0, setup
        assert is_number(setup["p50_ms"]) and is_number(setup["p95_ms"]) and setup["p50_ms"] <= setup["p95_ms"]
    assert is_number(calls["setup_p95_ratio_kamailio_vs_static"])
    levels = calls["capacity"]["levels"]
    assert levels and all(level["with_audio"] <= level["calls"] for level in levels)
    assert calls["max_concurrent_calls_with_audio"] == levels[0]["calls"], levels


def test_genesys_outage_results_are_well_formed(results: Path) -> None:
    """The smoke run: 5 agents, one 503 outage in kamailio mode; the other scenarios are full-run only."""
    data = load(results, "genesys_outage")
    assert data["dns"] == 5 and data["limit_s"] == 10 + 5 / 200
    assert is_number(data["baseline_first_bound_s"]) and data["baseline_first_bound_s"] > 0
    assert set(data["kamailio"]) == {"unavailable"} and data["static"] == {}
    figures = data["kamailio"]["unavailable"]
    assert len(figures["seconds"]) == data["reps"] == 1 and all(is_number(v) for v in figures["seconds"])
    assert figures["within_limit"] == (max(figures["seconds"]) <= data["limit_s"])
    assert data["all_within_limit"] == figures["within_limit"]
    summary = load(results, "summary")
    assert summary["outage"] == {"kamailio unavailable": figures["seconds"]}
    assert "kamailio mode, 5 DNs, Genesys answering 503" in (results / "summary.md").read_text()
