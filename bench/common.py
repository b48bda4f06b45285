"""What every benchmark shares: the run's configuration, the DNs it provisions, the lab's
state as the benchmarks left it, playbook runs with their PLAY RECAP, and clean-up helpers.

Everything here talks to loopback only: the lab (127.0.0.54 gateway, 127.0.0.81 stand-in)
and SIPp's own address (127.0.0.60).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lab import (
    GATEWAY,
    LAB_VARS,
    MODE_PLAYBOOKS,
    PROJECT,
    assert_loopback,
    dns_vars,
    gateway_state,
    run_playbook,
)

from bench import ROOT

# Bench DNs: 40000, 40001, ... (password "bench-<dn>"), provisioned next to the lab's own DNs.
BENCH_DN_BASE = 40000
# SIPp binds its own loopback address, so it never shares a socket with the lab's daemons.
SIPP_ADDRESS = "127.0.0.60"
LAB_USERS: dict[str, str] = {d["dn"]: d["password"] for d in LAB_VARS["webrtc_dns"]}
ASTERISK_SIP_PORT = int(LAB_VARS.get("webrtc_asterisk_sip_port", 5060))
KAMAILIO_SIP_PORT = int(LAB_VARS.get("webrtc_kamailio_sip_port", 5070))
ASTERISK_WS_PORT = int(LAB_VARS.get("webrtc_asterisk_ws_port", 8088))
# Kamailio settings the benchmark runs with (passed as extra vars to every playbook of a run):
# a pike limit above what SIPp offers from its single address (2 requests per registration).
# kamailio_log_sequence stays on (the default), as operators run it; --no-kamailio-log-sequence
# turns it off for a comparison.
BENCH_KAMAILIO_VARS: dict[str, Any] = {"kamailio_pike_density": 100000}

for _address in (GATEWAY, SIPP_ADDRESS):
    assert_loopback(_address)


class BenchError(RuntimeError):
    """A benchmark could not produce its figures (the lab did not behave)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_users(count: int) -> dict[str, str]:
    """The first `count` bench DNs and their passwords."""
    return {str(BENCH_DN_BASE + i): f"bench-{BENCH_DN_BASE + i}" for i in range(count)}


@dataclass
class Config:
    """One run's parameters (presets: FULL, SMOKE; overridable on the command line)."""

    mode: str
    out: Path
    n_dns: int
    m_clients: int
    rates: list[int]
    reps: int
    min_run_s: float
    ws_reps: int
    scale_sizes: list[int]
    scale_reps: int
    switch_dns: int
    switch_reps: int
    switch_min_reps: int
    idempotent: bool
    kamailio_vars: dict[str, Any]
    # Live clients in the gap benchmark. They start in static mode, where Asterisk's HTTP
    # server takes at most 100 WebSocket sessions (http.conf sessionlimit, default 100).
    gap_clients: int = 200
    budget_s: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def raw(self) -> Path:
        """Raw outputs (SIPp files, playbook logs, per-DN figures): not committed."""
        path = self.out / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def left(self) -> float:
        """Seconds left of the time budget (inf without one)."""
        if self.budget_s is None:
            return math.inf
        return self.budget_s - (time.monotonic() - self.started)

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "n_dns": self.n_dns,
            "m_clients": self.m_clients,
            "gap_clients": self.gap_clients,
            "rates": self.rates,
            "reps": self.reps,
            "ws_reps": self.ws_reps,
            "scale_sizes": self.scale_sizes,
            "scale_reps": self.scale_reps,
            "switch_dns": self.switch_dns,
            "switch_reps": self.switch_reps,
            "idempotent": self.idempotent,
            "kamailio_vars": self.kamailio_vars,
            "budget_s": self.budget_s,
        }


def preset(mode: str, out: Path) -> Config:
    if mode == "smoke":
        return Config(
            mode="smoke",
            out=out,
            n_dns=20,
            m_clients=5,
            rates=[100],
            reps=1,
            min_run_s=1.0,
            ws_reps=1,
            scale_sizes=[20],
            scale_reps=1,
            switch_dns=20,  # the throughput set: saves a playbook run in the smoke
            switch_reps=0,  # switch_cost reuses switch_gap's timed switches: saves four runs
            switch_min_reps=0,
            idempotent=False,
            kamailio_vars=dict(BENCH_KAMAILIO_VARS),
            gap_clients=5,
        )
    return Config(
        mode="full",
        out=out,
        n_dns=1000,
        m_clients=200,
        # Finer steps where the two targets part: a ratio read off a doubling ladder can only
        # be 1, 0.5 or 0.25.
        rates=[100, 200, 400, 800, 1200, 1600, 2000, 2400, 2800, 3200, 4000, 4800, 6400],
        reps=3,
        min_run_s=2.0,
        ws_reps=3,
        scale_sizes=[100, 1000, 3000],
        scale_reps=3,
        switch_dns=200,
        switch_reps=5,
        switch_min_reps=3,
        idempotent=True,
        kamailio_vars=dict(BENCH_KAMAILIO_VARS),
    )


# ---- statistics ---------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float | None:
    """Linear-interpolated percentile (pct in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def finite(data: Any) -> Any:
    """`data` with every non-finite float (inf, nan) replaced by None: strict JSON."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(data), indent=2, allow_nan=False) + "\n")


# ---- playbooks ----------------------------------------------------------------------------
_RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)"
)
_SUMMARY = re.compile(r'"msg": "(?P<msg>[^"]*took \d+ s)"')


def parse_recap(stdout: str) -> dict[str, int]:
    """Totals of the PLAY RECAP lines: {"ok", "changed", "failed", "hosts"}."""
    totals = {"ok": 0, "changed": 0, "failed": 0, "hosts": 0}
    recap = stdout.rsplit("PLAY RECAP", 1)[-1] if "PLAY RECAP" in stdout else ""
    for line in recap.splitlines():
        match = _RECAP.match(line.strip())
        if match:
            totals["hosts"] += 1
            for key in ("ok", "changed", "failed"):
                totals[key] += int(match.group(key))
    return totals


# profile_tasks (ansible.cfg) prints, at each task or handler header, the previous task's
# duration: "Tuesday 08 December 2026  02:44:14 +0000 (0:00:01.009)       0:00:14.678 ****".
_TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\]")
_TASK_TIMES = re.compile(r"\((?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)\)\s+\d+:\d+:[\d.]+\s\*")
STEP_FLOOR_S = 0.3  # tasks shorter than this are summed as "other tasks"


def parse_steps(stdout: str) -> dict[str, Any]:
    """Where a playbook run's time went, from profile_tasks: each task of at least STEP_FLOOR_S
    seconds (summed when a name repeats, e.g. a handler run twice), and the count and sum of
    the shorter ones (module start-up, skips, includes, facts). Resolution: 0.01 s per task."""
    names: list[str] = []
    durations: list[float] = []
    for line in stdout.splitlines():
        header = _TASK_HEADER.match(line)
        if header:
            names.append(header.group("name"))
        times = _TASK_TIMES.search(line)
        if times:
            durations.append(int(times.group("h")) * 3600 + int(times.group("m")) * 60 + float(times.group("s")))
    # The n-th timestamp line closes the task opened before it; the last task is closed by the
    # recap's timestamp line.
    steps: dict[str, float] = {}
    other_n, other_s = 0, 0.0
    for name, seconds in zip(names, durations[1:], strict=False):
        if seconds >= STEP_FLOOR_S:
            steps[name] = round(steps.get(name, 0.0) + seconds, 2)
        else:
            other_n, other_s = other_n + 1, other_s + seconds
    return {"tasks": len(names), "steps": steps, "other_tasks": {"count": other_n, "seconds": round(other_s, 2)}}


@dataclass
class PlaybookRun:
    playbook: str
    seconds: float
    changed: int
    failed: int
    returncode: int
    summary: str
    profile: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "seconds": self.seconds,
            "changed": self.changed,
            "failed": self.failed,
            "returncode": self.returncode,
            "summary": self.summary,
            "profile": self.profile,
        }


LabState = tuple[str, frozenset[str]]


class Lab:
    """Runs the collection's playbooks for the benchmarks and remembers the state they left
    (mode, DN set), so a benchmark provisions only when something must change."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.count = 0
        self.runs: list[PlaybookRun] = []
        self.state: LabState | None = self.detect()

    def detect(self) -> LabState | None:
        """The lab's current (mode, DNs) if it was provisioned with this run's Kamailio vars."""
        try:
            mode = (PROJECT / "mode").read_text().strip()
            pjsip = (PROJECT / "asterisk/etc/pjsip.conf").read_text()
            kamailio = (PROJECT / "kamailio/kamailio-proxy.cfg").read_text()
            nginx = (PROJECT / "nginx/nginx.conf").read_text()
            services = gateway_state()["services"]
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        want_log = bool(self.cfg.kamailio_vars.get("kamailio_log_sequence", True))
        density = self.cfg.kamailio_vars.get("kamailio_pike_density")
        if ("#!define WITH_SEQUENCE_LOG" in kamailio) != want_log:
            return None
        if density is not None and f'"reqs_density_per_unit", {density})' not in kamailio:
            return None
        port = 8080 if mode == "kamailio" else 8088
        if f"server {GATEWAY}:{port};" not in nginx or not services.get("asterisk"):
            return None
        if services.get("kamailio") != (mode == "kamailio"):
            return None
        dns = frozenset(re.findall(r"^\[(\d+)\]\ntype=endpoint", pjsip, flags=re.MULTILINE))
        return (mode, dns)

    def playbook(
        self, name: str, users: dict[str, str] | None, extra: dict[str, Any] | None = None, check: bool = True
    ) -> PlaybookRun:
        """Run revert.yml / rollback.yml with the bench DNs `users` (None: the lab inventory as
        is, no extra vars at all); `extra`: further extra vars for this run only."""
        extra_vars = (
            None if users is None else {"webrtc_dns": dns_vars(users), **self.cfg.kamailio_vars, **(extra or {})}
        )
        self.count += 1
        log(f"playbook {name} ({len(users or {})} bench DNs)")
        started = time.monotonic()
        result = run_playbook(name, extra_vars)
        seconds = round(time.monotonic() - started, 2)
        totals = parse_recap(result.stdout)
        summary = _SUMMARY.search(" ".join(result.stdout.split()))
        run = PlaybookRun(
            name,
            seconds,
            totals["changed"],
            totals["failed"],
            result.returncode,
            summary.group("msg") if summary else "",
            parse_steps(result.stdout),
        )
        self.runs.append(run)
        (self.cfg.raw / "playbooks").mkdir(parents=True, exist_ok=True)
        (self.cfg.raw / "playbooks" / f"{self.count:02d}-{name}.log").write_text(result.stdout + result.stderr)
        log(f"playbook {name}: rc={result.returncode} {seconds} s changed={totals['changed']}")
        if result.returncode != 0:
            self.state = None
            if check:
                raise BenchError(f"{name} failed (rc {result.returncode}): {result.stdout[-2000:]}")
        else:
            mode = "kamailio" if name == "revert.yml" else "static"
            # The inventory's own settings (users None) are not a bench state.
            self.state = (mode, frozenset({**LAB_USERS, **users})) if users is not None else None
        return run

    def ensure(self, mode: str, users: dict[str, str], extra: dict[str, Any] | None = None) -> PlaybookRun | None:
        """Bring the lab to `mode` with exactly the lab DNs plus `users` (no-op when there)."""
        if self.state == (mode, frozenset({**LAB_USERS, **users})):
            return None
        return self.playbook(MODE_PLAYBOOKS[mode], users, extra)


# ---- the stand-in and Asterisk ------------------------------------------------------------
def asterisk_contacts() -> dict[str, list[dict[str, str]]]:
    contacts: dict[str, list[dict[str, str]]] = gateway_state()["asterisk"]["contacts"]
    return contacts


def cpu_model() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _first_line(cmd: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
        text = (result.stdout or result.stderr).strip()
        if result.returncode == 0 and text:
            return text.splitlines()[0].strip()
    return "unknown"


def memory_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def daemon_versions(image: str) -> dict[str, str]:
    """The versions the gateway image runs, asked of the daemons themselves."""
    run = ["docker", "run", "--rm", "--network", "none", image]
    return {
        "asterisk": _first_line([*run, "asterisk", "-V"]),
        "kamailio": _first_line([*run, "kamailio", "-v"]),
        "nginx": _first_line([*run, "nginx", "-v"]),
    }


def gateway_image() -> str:
    """The gateway image the lab runs: the inventory's, else the gateway role's default."""
    defaults = yaml.safe_load((ROOT / "roles/gateway/defaults/main.yml").read_text())
    return str(LAB_VARS.get("gateway_image", defaults["gateway_image"]))


def machine() -> dict[str, Any]:
    """The machine a run measured, each item read from the machine (nothing typed in)."""
    debian = Path("/etc/debian_version")
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_mb": memory_mb(),
        "kernel": platform.release(),
        "debian": debian.read_text().strip() if debian.exists() else "unknown",
        "docker": _first_line(["docker", "version", "--format", "{{.Server.Version}}"]),
        "daemons": daemon_versions(gateway_image()),
    }


def bench_root() -> Path:
    return ROOT / "bench"
