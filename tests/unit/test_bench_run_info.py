"""How a benchmark run records itself in summary.json (bench/run.py run_info)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.run import run_info


def invocation(started: str, results: list[str], errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "started": started,
        "command": "python -m bench.run",
        "config": {"started": started},
        "results": results,
        "errors": errors or {},
        "run_seconds": 10.0,
        "playbook_runs": 2,
    }


def test_a_full_run_starts_the_record_afresh() -> None:
    previous = run_info({}, invocation("t0", ["throughput"]), "full", partial=False)
    info = run_info(previous, invocation("t1", ["websocket"]), "full", partial=False)
    assert [run["started"] for run in info["invocations"]] == ["t1"]
    assert info["benchmarks_run"] == ["websocket"]


def test_a_partial_run_adds_to_the_record_and_clears_the_errors_it_fixed() -> None:
    first = invocation("t0", ["throughput", "websocket"], {"static_scale": "Argument list too long"})
    previous = run_info({}, first, "full", partial=False)
    info = run_info(previous, invocation("t1", ["static_scale"]), "full", partial=True)
    assert [run["started"] for run in info["invocations"]] == ["t0", "t1"]
    assert info["benchmarks_run"] == ["static_scale", "throughput", "websocket"]
    assert info["errors"] == {}
    assert info["date"] == "t0" and info["config"] == {"started": "t0"}
    assert info["run_seconds"] == 20.0 and info["playbook_runs"] == 4


def test_a_partial_run_of_another_mode_does_not_mix_with_the_record() -> None:
    previous = run_info({}, invocation("t0", ["throughput"]), "full", partial=False)
    info = run_info(previous, invocation("t1", ["throughput"]), "smoke", partial=True)
    assert [run["started"] for run in info["invocations"]] == ["t1"]


class FakeLab:
    def __init__(self) -> None:
        self.runs: list[Any] = []
        self.state = None


def test_an_interrupted_benchmark_is_recorded_and_stops_the_run(tmp_path: Path, monkeypatch: Any) -> None:
    """Ctrl-C (or SIGTERM, turned into one) during a benchmark: its error names the
    interruption, the ones after it are named as not run, the exit code is 130."""
    from bench import run  # noqa: PLC0415

    ran: list[str] = []

    def run_one(name: str, *_: Any) -> dict[str, Any]:
        ran.append(name)
        if name == "websocket":
            raise KeyboardInterrupt
        return {"benchmark": name}

    monkeypatch.setattr(run, "run_one", run_one)
    cfg = run.configure(run.parse_args(["--mode", "smoke", "--out", str(tmp_path)]))
    errors, interrupted = run.run_selected(["throughput", "websocket", "calls"], cfg, FakeLab(), True, "t0")  # type: ignore[arg-type]
    assert interrupted and ran == ["throughput", "websocket"]
    assert errors["websocket"].startswith("interrupted (Ctrl-C)")
    assert errors["calls"] == "not run: the run was interrupted"
    assert (tmp_path / "throughput.json").is_file()


def test_a_whole_run_removes_the_previous_record_first(tmp_path: Path) -> None:
    from bench import run  # noqa: PLC0415

    previous = ["summary.json", "summary.md", "throughput.json", "calls.json", "switch_bindings.png"]
    for name in [*previous, "notes.txt"]:
        (tmp_path / name).write_text("from an earlier run")
    run.start_record(tmp_path, whole=False)  # a partial run (--only) keeps the record
    assert all((tmp_path / name).exists() for name in previous)
    run.start_record(tmp_path, whole=True)
    assert [name for name in previous if (tmp_path / name).exists()] == []
    assert (tmp_path / "notes.txt").exists()  # not a result file: left alone


def test_the_record_names_the_commit_it_measured(tmp_path: Path) -> None:
    from bench import run  # noqa: PLC0415

    info = run.commit_info()
    assert info["commit"] is not None and len(info["commit"]) == 40
    assert isinstance(info["tree_clean"], bool)
    assert run.commit_info(tmp_path) == {"commit": None, "tree_clean": False}  # not a checkout
