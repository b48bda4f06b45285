"""CPU time per part of the lab while a benchmark step runs: where the time goes.

Read from /proc (utime + stime of every process, in clock ticks: 10 ms at the usual
USER_HZ of 100) before and after the step. Processes are grouped by what they are: a
container's processes by its compose service (kamailio, asterisk, registration-monitor,
the stand-in's genesys), the container runtime (dockerd, containerd, containerd-shim: it
carries every line a container writes to its log), and SIPp, which runs as our child
(RUSAGE_CHILDREN). A process that starts and ends inside the step is not seen, except SIPp.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from dataclasses import dataclass
from typing import Any

HZ = os.sysconf("SC_CLK_TCK")
RUNTIME = {"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy"}
_CONTAINER = re.compile(r"docker[-/]([0-9a-f]{64})")


def _services() -> dict[str, str]:
    """Container id -> compose service name, for the containers running now."""
    out = subprocess.run(
        ["docker", "ps", "--no-trunc", "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}'],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def _ticks() -> dict[int, tuple[str, int]]:
    """pid -> (group, utime + stime ticks)."""
    services = _services()
    found: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cgroup") as f:
                cgroup = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        match = _CONTAINER.search(cgroup)
        if match:
            group = services.get(match.group(1), "other container")
        elif comm in RUNTIME or comm.startswith("containerd-shim"):
            group = "container runtime"
        else:
            continue  # the host's other processes (this benchmark, kernel threads)
        found[int(entry)] = (group, ticks)
    return found


def _children_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSample:
    """A snapshot taken before a step; `since()` gives the CPU seconds each part used."""

    ticks: dict[int, tuple[str, int]]
    children_s: float

    @classmethod
    def take(cls) -> CpuSample:
        ticks = _ticks()  # runs `docker ps`, a child: read the children's time after it
        return cls(ticks, _children_s())

    def since(self, children_label: str = "sipp") -> dict[str, Any]:
        children_s = _children_s()
        now = _ticks()
        used: dict[str, float] = {}
        for pid, (group, ticks) in now.items():
            before = self.ticks.get(pid)
            start = before[1] if before and before[0] == group else 0
            used[group] = used.get(group, 0.0) + (ticks - start) / HZ
        used[children_label] = children_s - self.children_s
        return {
            "cpu_s": {group: round(seconds, 2) for group, seconds in sorted(used.items()) if seconds > 0},
            "resolution_s": round(1 / HZ, 3),
        }
