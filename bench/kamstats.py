"""Kamailio's own counters and the sockets' drops around one SIPp run: where the time goes, part 2.

Read before and after a run (the CPU split per process is `cpu.py`'s):
  - Kamailio's statistics over JSON-RPC (`stats.get_statistics`): transactions (tmx), replies
    it generated itself (sl), requests and replies it dropped or failed to forward (core), and
    its shared memory (shmem; `max_used_size` is the high-water mark since Kamailio started);
  - the private (pkg) memory of its processes (`pkg.stats`: the largest share any one uses) and
    its process count (`core.psx`);
  - for each listening UDP socket of the lab, the datagrams the kernel dropped because the
    socket's receive buffer was full (`/proc/net/udp`, last column), and the host's UDP
    receive-buffer errors (`/proc/net/snmp`), which also count SIPp's own socket: it is opened
    and closed by the run, so no snapshot sees it.
Counters are reported as what the run added; memory and process counts as read after it.
"""

from __future__ import annotations

from typing import Any

from lab import GATEWAY, STANDIN, kamailio_rpc

from bench.common import ASTERISK_SIP_PORT, KAMAILIO_SIP_PORT

# The lab's listening UDP sockets by what they are (address, port).
SOCKETS = {
    "kamailio": (GATEWAY, KAMAILIO_SIP_PORT),
    "asterisk": (GATEWAY, ASTERISK_SIP_PORT),
    "genesys stand-in": STANDIN,
}
COUNTERS = (
    "tmx:UAS_transactions",
    "tmx:UAC_transactions",
    "tmx:rpl_received",
    "tmx:rpl_relayed",
    "tmx:rpl_generated",
    "tmx:4xx_transactions",
    "tmx:5xx_transactions",
    "sl:sent_replies",
    "sl:5xx_replies",
    "core:rcv_requests",
    "core:rcv_replies",
    "core:drop_requests",
    "core:drop_replies",
    "core:err_requests",
    "core:err_replies",
)
LEVELS = ("tmx:active_transactions", "shmem:used_size", "shmem:max_used_size", "shmem:total_size", "shmem:fragments")


def _hex_address(address: str, port: int) -> str:
    """127.0.0.54, 5070 -> "3600007F:13CE", as /proc/net/udp writes it (little-endian IPv4)."""
    octets = [int(part) for part in address.split(".")]
    return "".join(f"{octet:02X}" for octet in reversed(octets)) + f":{port:04X}"


def udp_drops() -> dict[str, int]:
    """Datagrams dropped per lab socket since it opened, and the host's receive-buffer errors."""
    drops = dict.fromkeys(SOCKETS, 0)
    with open("/proc/net/udp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    for name, (address, port) in SOCKETS.items():
        wanted = _hex_address(address, port)
        drops[name] = sum(int(row[-1]) for row in rows if row[1] == wanted)
    with open("/proc/net/snmp") as f:
        udp = [line.split() for line in f if line.startswith("Udp:")]
    drops["host RcvbufErrors"] = int(dict(zip(udp[0][1:], udp[1][1:], strict=True))["RcvbufErrors"])
    return drops


def _statistics() -> dict[str, int]:
    result = kamailio_rpc("stats.get_statistics", "tmx:", "sl:", "core:", "shmem:") or []
    stats: dict[str, int] = {}
    for line in result:
        name, _, value = str(line).partition(" = ")
        if value.strip().lstrip("-").isdigit():
            stats[name.strip()] = int(value)
    return stats


def snapshot() -> dict[str, Any]:
    """Everything this module reads, now. A Kamailio that does not answer gives no statistics."""
    taken: dict[str, Any] = {"udp_drops": udp_drops()}
    try:
        taken["stats"] = _statistics()
        pkg = kamailio_rpc("pkg.stats") or []
        taken["pkg_max_used"] = max((int(p.get("real_used", 0)) for p in pkg), default=None)
        taken["pkg_size"] = max((int(p.get("total_size", 0)) for p in pkg), default=None)
        taken["processes"] = len(kamailio_rpc("core.psx") or [])
    except OSError as error:
        taken["error"] = f"Kamailio's RPC did not answer: {error}"
    return taken


def since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a run added to the counters, and the levels after it."""
    drops_before, drops_after = before["udp_drops"], after["udp_drops"]
    figures: dict[str, Any] = {"udp_drops": {k: drops_after[k] - drops_before.get(k, 0) for k in drops_after}}
    if "stats" in before and "stats" in after:
        figures["counters"] = {k: after["stats"].get(k, 0) - before["stats"].get(k, 0) for k in COUNTERS}
        figures["levels"] = {k: after["stats"].get(k) for k in LEVELS}
        for key in ("pkg_max_used", "pkg_size", "processes"):
            figures[key] = after.get(key)
    else:
        figures["error"] = after.get("error") or before.get("error")
    return figures
