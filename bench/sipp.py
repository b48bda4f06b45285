"""SIPp runs (Debian's sip-tester) with digest auth, and what they measured.

Scenarios are in bench/sipp/: register.xml (REGISTER, 401, REGISTER with credentials, 200;
response-time measure "reg" around both transactions) and unregister.xml (Contact: *,
Expires: 0). DNs and passwords come from a CSV injection file (SEQUENTIAL,
"dn;[authentication username=dn password=pw]").
SIPp binds its own loopback address (SIPP_ADDRESS). Response times come from -trace_rtt
(one line per call; SIPp's clock has a resolution of 1 ms).
"""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

from lab import GATEWAY, assert_loopback

from bench import ROOT
from bench.common import ASTERISK_SIP_PORT, SIPP_ADDRESS, BenchError, Config, asterisk_contacts, log, percentile
from bench.cpu import CpuSample

SCENARIOS = ROOT / "bench/sipp"
_COUNTER = itertools.count(1)
_STAT_FIELDS = {
    "created": "TotalCallCreated",
    "successful": "SuccessfulCall(C)",
    "failed": "FailedCall(C)",
    "retransmissions": "Retransmissions(C)",
    "failed_max_udp_retrans": "FailedMaxUDPRetrans(C)",
    "failed_timeout_on_recv": "FailedTimeoutOnRecv(C)",
    "failed_unexpected_message": "FailedUnexpectedMessage(C)",
    "out_of_call_msgs": "OutOfCallMsgs(C)",
    "dead_call_msgs": "DeadCallMsgs(C)",
}


def write_injection(users: dict[str, str], path: Path) -> None:
    """SEQUENTIAL; per line the DN and the [authentication] keyword with its credentials."""
    lines = [
        "SEQUENTIAL",
        *(f"{dn};[authentication username={dn} password={password}]" for dn, password in sorted(users.items())),
    ]
    path.write_text("\n".join(lines) + "\n")


def parse_stat(text: str) -> dict[str, int]:
    """The last line of SIPp's -trace_stat CSV, cumulative counters only."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise BenchError("SIPp wrote no statistics")
    header = lines[0].split(";")
    values = lines[-1].split(";")
    row = dict(zip(header, values, strict=False))
    figures: dict[str, int] = {}
    for key, column in _STAT_FIELDS.items():
        try:
            figures[key] = int(row.get(column, "0") or 0)
        except ValueError:
            figures[key] = 0
    return figures


def parse_rtt(text: str) -> tuple[list[float], list[float]]:
    """-trace_rtt lines "date_ms;response_time_ms;rtd": (response times, their dates)."""
    times: list[float] = []
    dates: list[float] = []
    for line in text.splitlines()[1:]:
        parts = line.strip().split(";")
        if len(parts) >= 2:
            try:
                dates.append(float(parts[0]))
                times.append(float(parts[1]))
            except ValueError:
                continue
    return times, dates


def run_scenario(
    cfg: Config,
    scenario: str,
    users: dict[str, str],
    host: str,
    port: int,
    *,
    rate: int,
    calls: int,
    label: str,
    expires: int = 600,
) -> dict[str, Any]:
    """Offer `calls` registrations at `rate`/s to host:port; return the run's figures."""
    assert_loopback(host)
    workdir = cfg.raw / "sipp" / f"{next(_COUNTER):03d}-{label}"
    workdir.mkdir(parents=True, exist_ok=True)
    injection = workdir / "users.csv"
    write_injection(users, injection)
    duration = calls / rate
    cmd = [
        "sipp",
        f"{host}:{port}",
        "-sf",
        str(SCENARIOS / f"{scenario}.xml"),
        "-inf",
        str(injection),
        "-i",
        SIPP_ADDRESS,
        "-key",
        "expires",
        str(expires),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-l",
        str(max(1000, rate * 10)),
        "-recv_timeout",
        "8000",
        "-max_retrans",
        "4",
        "-timeout",
        f"{int(duration + 45)}s",
        "-trace_rtt",
        "-rtt_freq",
        "1",
        "-trace_stat",
        "-stf",
        str(workdir / "stat.csv"),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(workdir / "errors.log"),
        "-nostdin",
    ]
    cpu = CpuSample.take()
    started = time.monotonic()
    result = subprocess.run(
        cmd,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=duration + 90,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    wall = time.monotonic() - started
    used = cpu.since("sipp")
    (workdir / "screen.txt").write_text(result.stdout[-20000:] + result.stderr[-5000:])
    stat_file = workdir / "stat.csv"
    if not stat_file.exists():
        raise BenchError(f"SIPp failed (rc {result.returncode}): {result.stderr[-800:]} {result.stdout[-800:]}")
    stats = parse_stat(stat_file.read_text(errors="replace"))
    rtts: list[float] = []
    dates: list[float] = []
    for rtt_file in workdir.glob("*_rtt.csv"):
        t, d = parse_rtt(rtt_file.read_text(errors="replace"))
        rtts += t
        dates += d
    span_s = max(dates) / 1000 if dates else wall
    successful = stats["successful"]
    figures: dict[str, Any] = {
        "label": label,
        "target": f"{host}:{port}",
        "offered_rate": rate,
        "calls": calls,
        **stats,
        "success_ratio": round(successful / calls, 5) if calls else 0.0,
        "achieved_rate": round(successful / span_s, 1) if span_s > 0 else None,
        "wall_s": round(wall, 2),
        "returncode": result.returncode,
        # CPU seconds per part of the lab during the run (bench/cpu.py), and per registration
        "cpu": used,
        "cpu_ms_per_registration": {
            part: round(1000 * seconds / successful, 3) for part, seconds in used["cpu_s"].items()
        }
        if successful
        else None,
        "rtt_ms": {
            "count": len(rtts),
            "p50": percentile(rtts, 50),
            "p95": percentile(rtts, 95),
            "p99": percentile(rtts, 99),
            "max": max(rtts) if rtts else None,
            "mean": round(sum(rtts) / len(rtts), 3) if rtts else None,
        },
    }
    log(
        f"sipp {label}: {rate}/s x {calls}: ok {successful} failed {stats['failed']} "
        f"retrans {stats['retransmissions']} p50 {figures['rtt_ms']['p50']} p99 {figures['rtt_ms']['p99']} ms"
    )
    return figures


def clear_contacts(cfg: Config, users: dict[str, str]) -> dict[str, Any]:
    """Remove every contact of `users` at Asterisk (Contact: *, Expires: 0, with auth, straight
    to Asterisk). Clients that exit without un-REGISTER leave contacts behind, and a revert
    waits for every DN with a contact at Asterisk to come back through Kamailio."""
    if not users:
        return {"cleared": 0, "failed": 0, "left": 0}
    run = run_scenario(cfg, "unregister", users, GATEWAY, ASTERISK_SIP_PORT, rate=500, calls=len(users), label="clear")
    left = sorted(set(asterisk_contacts()) & set(users))
    if left:
        log(f"clear_contacts: {len(left)} DNs still have contacts at Asterisk: {left[:5]}")
    return {"cleared": run["successful"], "failed": run["failed"], "left": len(left)}
