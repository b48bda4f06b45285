#!/usr/bin/env python3
"""Report the gateway's registration state as JSON (stdlib only; runs on the gateway host).

    gateway-state --project /opt/gcti_apps/webrtc-genesys --rpc http://127.0.0.1:5071

Prints {"mode", "services", "bound", "calls", "asterisk": {"contacts", "registrations"}, "kamailio": {"forwarded"}}:
  bound          {"static": [DN...], "forwarded": [DN...]}: DNs bound at Genesys by each path.
  calls          DN -> number of Asterisk channels of that agent (ringing or up): the calls in progress.
  contacts       DN -> list of {"uri", "status"}: the clients registered at Asterisk.
  registrations  DN -> {"name", "status", "expires"}: Asterisk's static registrations at Genesys.
  forwarded      DN -> {"code", "expires", "time", "until"}: Genesys's last answer to Kamailio's
                 mirror (expires: what Genesys granted) and when the binding it holds ends.
  listed         DN -> {"mine", "static", "time"}: whether Genesys's last 2xx for the DN listed
                 Kamailio's forwarded contact and Asterisk's static one (1 or 0).
The switch playbooks read it to decide when a step is done and to print their summary.

    gateway-state ... --drain-from kamailio|static --drain-wait 1800 [--force]

Moves the clients still connected through the previous mode's path (after nginx's reload, the old
nginx worker keeps their WebSockets open): each connection whose agent has no call in progress is
closed now, and each one carrying a call is closed as soon as that call ends. The client
reconnects at once, through the new path. A connection still carrying a call when --drain-wait
runs out, or any with --force, is closed anyway and its calls are named as cut.
Prints {"closed": {DN: when}, "waited": {DN: seconds}, "cut": [DN...], "remaining": [DN...]}.
A connection through Kamailio is closed with Kamailio's ws.close; one straight to Asterisk
(which has no such command) by shutting down nginx's upstream socket to it (pidfd_getfd, then
shutdown: needs root), an orderly close that neither nginx nor Asterisk logs as an error.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_CONTACT = re.compile(r"^\s*Contact:\s+(?P<aor>[^/\s]+)/(?P<uri>\S+)\s+\S+\s+(?P<status>\S+)")
_REGISTRATION = re.compile(
    r"^\s*(?P<name>[^/\s]+)/(?P<server>\S+)\s+(?P<auth>\S+)\s+(?P<status>Registered|Unregistered|Rejected|Stopped|Stopping)"
    r"(?:\s+\(exp\.\s*(?P<expires>-?\d+)s\))?"
)
_SERVICES = ("nginx", "kamailio", "asterisk", "registration-monitor")
# An agent's channel: PJSIP/<DN>-<sequence> (the Genesys trunk's channels are PJSIP/genesys-...).
_AGENT_CHANNEL = re.compile(r"^PJSIP/(?P<dn>\d+)-[0-9a-f]+$")
# ws.dump: "153: ws:127.0.0.1:43088 -> ws:127.0.0.54:8080 (state: OPEN, ...)".
_WS_CONNECTION = re.compile(r"^(?P<id>\d+):")
# pjsip list contacts: "Contact:  1002/sip:x@127.0.0.1:40144;transport=WS ..." (a WebSocket client's
# contact rewritten to nginx's upstream address and port).
_WS_CONTACT = re.compile(
    r"^\s*Contact:\s+(?P<dn>\d+)/sip:[^@\s]+@(?P<host>[^:;\s]+):(?P<port>\d+);transport=WSS?\b", re.IGNORECASE
)


def docker(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


# Compose labels its containers with the service and the project directory: one `docker ps`
# finds them, and `docker exec` of a container id needs no second read of the compose file
# (each `docker compose` call parses it: 0.3 s on a small host, for every poll of a switch).
_SERVICE_LABEL = "com.docker.compose.service"
_DIRECTORY_LABEL = "com.docker.compose.project.working_dir"


def running_containers(project: Path) -> dict[str, str]:
    """The project's services that run or that their restart policy keeps restarting (a daemon
    exiting at start is not "stopped": static mode wants Kamailio stopped), {service: container id}."""
    labels = "\t".join('{{.Label "' + label + '"}}' for label in (_SERVICE_LABEL, _DIRECTORY_LABEL))
    result = docker(
        "ps",
        "--no-trunc",
        "--filter",
        f"label={_DIRECTORY_LABEL}",
        "--filter",
        "status=running",
        "--filter",
        "status=restarting",
        "--format",
        "{{.ID}}\t" + labels,
    )
    wanted = os.path.realpath(project)
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 3 and parts[0] and parts[1] and os.path.realpath(parts[2]) == wanted:
            found[parts[1]] = parts[0]
    return found


def service_flags(containers: dict[str, str]) -> dict[str, bool]:
    """Every gateway service, up or not, from running_containers()."""
    return {name: name in containers for name in _SERVICES}


def asterisk_cli(project: Path, command: str, container: str | None = None) -> str:
    container = container or running_containers(project).get("asterisk")
    if container is None:
        return ""
    result = docker("exec", container, "asterisk", "-rx", command)
    return result.stdout if result.returncode == 0 else ""


def parse_contacts(text: str) -> dict[str, list[dict[str, str]]]:
    contacts: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        match = _CONTACT.match(line)
        # DNs only (digits): the Genesys trunk's AOR holds a permanent contact, not a client.
        if match and match.group("aor").isdigit():
            contacts.setdefault(match.group("aor"), []).append(
                {"uri": match.group("uri"), "status": match.group("status")}
            )
    return contacts


def parse_registrations(text: str, prefix: str) -> dict[str, dict[str, Any]]:
    registrations: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        match = _REGISTRATION.match(line)
        if not match or not match.group("name").startswith(prefix):
            continue
        dn = match.group("name")[len(prefix) :]
        expires = match.group("expires")
        registrations[dn] = {
            "name": match.group("name"),
            "status": match.group("status"),
            "expires": int(expires) if expires is not None else None,
        }
    return registrations


def parse_htable_dump(result: Any) -> dict[str, dict[str, Any]]:
    """Kamailio's htable.dump of fwdres: "<code>|<seconds granted>|<unix time>|<bound until>" per DN.

    "bound until" is when the binding Genesys granted ends (a failed refresh keeps the previous
    grant's); a value without it (three fields) is bound for its grant from its time."""
    forwarded: dict[str, dict[str, Any]] = {}
    for name, fields in htable_items(result):
        try:
            code, expires, stamp = (int(v) for v in fields[:3])
            granted_until = stamp + expires if 200 <= code < 300 and expires > 0 else 0
            until = int(fields[3]) if len(fields) > 3 else granted_until
        except ValueError:
            continue
        forwarded[name] = {"code": code, "expires": expires, "time": stamp, "until": until}
    return forwarded


def htable_items(result: Any) -> list[tuple[str, list[str]]]:
    """The (name, "|"-separated fields) of every item of a Kamailio htable.dump result."""
    return [
        (str(item["name"]), str(item.get("value", "")).split("|"))
        for bucket in result or []
        for item in bucket.get("slot", [])
        if "name" in item
    ]


def kamailio_rpc(rpc_url: str, method: str, *params: Any) -> Any:
    """One Kamailio JSON-RPC call: its result, or None when Kamailio did not answer or refused."""
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
    if not rpc_url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {rpc_url}")
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - operator-set URL
            reply = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return reply.get("result") if isinstance(reply, dict) else None


def listening(address: str, timeout: float = 1.0) -> bool:
    """Whether a TCP listener at "host:port" accepts a connection (closed at once)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def kamailio_forwarded(rpc_url: str) -> dict[str, dict[str, Any]] | None:
    result = kamailio_rpc(rpc_url, "htable.dump", "fwdres")
    return None if result is None else parse_htable_dump(result)


def parse_listed_dump(result: Any) -> dict[str, dict[str, int]]:
    """Kamailio's htable.dump of fwdlisted: "<mine>|<static>|<unix time>" per DN: whether
    Genesys's last 2xx for the DN listed this gateway's forwarded contact and Asterisk's static one."""
    listed: dict[str, dict[str, int]] = {}
    for name, fields in htable_items(result):
        try:
            mine, static, stamp = (int(v) for v in fields[:3])
        except ValueError:
            continue
        listed[name] = {"mine": mine, "static": static, "time": stamp}
    return listed


def kamailio_listed(rpc_url: str) -> dict[str, dict[str, int]]:
    result = kamailio_rpc(rpc_url, "htable.dump", "fwdlisted")
    return {} if result is None else parse_listed_dump(result)


def parse_calls(text: str) -> dict[str, int]:
    """`core show channels concise`: DN -> number of that agent's channels (a call ringing or up)."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        match = _AGENT_CHANNEL.match(line.split("!", 1)[0].strip())
        if match:
            calls[match.group("dn")] = calls.get(match.group("dn"), 0) + 1
    return calls


def calls_in_progress(project: Path, container: str | None = None) -> dict[str, int]:
    return parse_calls(asterisk_cli(project, "core show channels concise", container))


def parse_ws_dump(result: Any) -> set[int]:
    """Kamailio's ws.dump: the ids of the open WebSocket connections."""
    ids: set[int] = set()
    for line in (result or {}).get("connections", []) if isinstance(result, dict) else []:
        match = _WS_CONNECTION.match(str(line).strip())
        if match:
            ids.add(int(match.group("id")))
    return ids


def parse_wsdn(result: Any) -> dict[int, set[str]]:
    """Kamailio's wsdn table ("<DN>@<connection id>"): connection id -> DNs registered on it."""
    dns: dict[int, set[str]] = {}
    for bucket in result or []:
        for item in bucket.get("slot", []):
            dn, _, conid = str(item.get("name", "")).partition("@")
            if dn.isdigit() and conid.isdigit():
                dns.setdefault(int(conid), set()).add(dn)
    return dns


def parse_ws_contacts(text: str) -> dict[tuple[str, int], set[str]]:
    """`pjsip list contacts`: (nginx's upstream address, port) -> DNs of the WebSocket clients on it."""
    contacts: dict[tuple[str, int], set[str]] = {}
    for line in text.splitlines():
        match = _WS_CONTACT.match(line)
        if match:
            contacts.setdefault((match.group("host"), int(match.group("port"))), set()).add(match.group("dn"))
    return contacts


def parse_ss(text: str) -> set[tuple[str, int]]:
    """`ss -Htn`: the local (address, port) of each socket listed."""
    sockets: set[tuple[str, int]] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            address, _, port = fields[2].rpartition(":")
            if port.isdigit():
                sockets.add((address.strip("[]"), int(port)))
    return sockets


class OldPath:
    """The WebSocket connections still reaching the previous mode's SIP server, by DN."""

    def __init__(self, project: Path, rpc_url: str, old_mode: str, asterisk_ws: str) -> None:
        self.project, self.rpc_url, self.old_mode = project, rpc_url, old_mode
        self.asterisk_ws = asterisk_ws

    def connections(self) -> dict[Any, set[str]]:
        """Each open connection of the old path -> the DNs registered on it (empty: none)."""
        if self.old_mode == "kamailio":
            live = parse_ws_dump(kamailio_rpc(self.rpc_url, "ws.dump"))
            by_conid = parse_wsdn(kamailio_rpc(self.rpc_url, "htable.dump", "wsdn"))
            return {conid: by_conid.get(conid, set()) for conid in live}
        sockets = subprocess.run(
            ["ss", "-Htn", "state", "established", "dst", self.asterisk_ws],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        by_socket = parse_ws_contacts(asterisk_cli(self.project, "pjsip list contacts"))
        return {sock: by_socket.get(sock, set()) for sock in parse_ss(sockets.stdout)}

    def busy(self) -> set[str]:
        """The DNs with a call in progress (ringing or up)."""
        return set(calls_in_progress(self.project))

    def close(self, connection: Any) -> None:
        if self.old_mode == "kamailio":
            kamailio_rpc(self.rpc_url, "ws.close", connection)
            return
        address, port = connection
        listed = subprocess.run(
            ["ss", "-Htnp", "state", "established", "src", f"{address}:{port}", "dst", self.asterisk_ws],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        owner = _SS_OWNER.search(listed.stdout)
        if owner is None:
            return  # closed meanwhile
        shutdown_socket_of(int(owner.group("pid")), int(owner.group("fd")))


# ss -p: users:(("nginx",pid=32,fd=17)).
_SS_OWNER = re.compile(r"pid=(?P<pid>\d+),fd=(?P<fd>\d+)")
_SYS_PIDFD_GETFD = 438  # Linux >= 5.6, the same number on every architecture


def shutdown_socket_of(pid: int, fd: int) -> None:
    """shutdown(SHUT_RDWR) a socket another process (nginx's worker) holds, through a duplicate
    of its descriptor (pidfd_getfd: needs root). Both ends then see an orderly close: nginx reads
    end-of-file from its upstream and closes the client's connection, Asterisk reads a FIN. (The
    kernel's socket destroy, `ss -K`, does the same job but nginx logs an [alert] for the
    ECONNABORTED it reads and Asterisk an ERROR for the reset.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        duplicate = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if duplicate < 0:
            error = ctypes.get_errno()
            raise OSError(error, f"pidfd_getfd on fd {fd} of pid {pid} (needs root): {os.strerror(error)}")
        with socket.socket(fileno=duplicate) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    finally:
        os.close(pidfd)


def drain(path: OldPath, wait: float, force: bool, interval: float = 0.5) -> dict[str, Any]:
    """Close the old path's connections: idle ones now, each one carrying a call when it ends."""
    started = time.monotonic()
    closed: dict[str, float] = {}  # DN -> seconds into the drain when its connection was closed
    held: set[str] = set()  # DNs whose connection was kept open for a call
    cut: set[str] = set()
    while True:
        elapsed = round(time.monotonic() - started, 1)
        out_of_time = force or elapsed >= wait
        busy = path.busy()
        remaining: set[str] = set()
        for connection, dns in path.connections().items():
            if dns & busy and not out_of_time:
                remaining |= dns & busy
                continue
            path.close(connection)
            cut |= dns & busy
            closed.update(dict.fromkeys(dns, elapsed))
        held |= remaining
        if not remaining or out_of_time:
            return {
                "closed": closed,
                "waited": {dn: closed[dn] for dn in sorted(held) if dn in closed and dn not in cut},
                "cut": sorted(cut),
                "remaining": sorted(remaining),
                "seconds": round(time.monotonic() - started, 1),
            }
        time.sleep(interval)


def state(project: Path, rpc_url: str, prefix: str, kamailio_ws: str | None = None) -> dict[str, Any]:
    containers = running_containers(project)
    services = service_flags(containers)
    mode_file = project / "mode"
    asterisk: dict[str, Any] = {"contacts": {}, "registrations": {}}
    # The daemons are asked at the same time: a switch polls this while it waits.
    with ThreadPoolExecutor(max_workers=4) as pool:
        if services["asterisk"]:
            ast = containers["asterisk"]
            contacts = pool.submit(asterisk_cli, project, "pjsip show contacts", ast)
            registrations = pool.submit(asterisk_cli, project, "pjsip show registrations", ast)
            calls_asked = pool.submit(calls_in_progress, project, ast)
        if services["kamailio"]:
            forwarded_asked = pool.submit(kamailio_forwarded, rpc_url)
            listed_asked = pool.submit(kamailio_listed, rpc_url)
            ws_asked = pool.submit(listening, kamailio_ws) if kamailio_ws else None
        if services["asterisk"]:
            asterisk["contacts"] = parse_contacts(contacts.result())
            asterisk["registrations"] = parse_registrations(registrations.result(), prefix)
        forwarded = forwarded_asked.result() if services["kamailio"] else None
        listed = listed_asked.result() if services["kamailio"] else {}
        ws_listening = ws_asked.result() if services["kamailio"] and ws_asked is not None else None
        calls = calls_asked.result() if services["asterisk"] else {}
    now = time.time()
    bound_static = sorted(dn for dn, reg in asterisk["registrations"].items() if reg["status"] == "Registered")
    bound_forwarded = sorted(dn for dn, fwd in (forwarded or {}).items() if fwd["until"] > now)
    return {
        "bound": {"static": bound_static, "forwarded": bound_forwarded},
        "calls": calls,
        "mode": mode_file.read_text().strip() if mode_file.exists() else None,
        "services": services,
        "asterisk": asterisk,
        "kamailio": {
            "reachable": forwarded is not None,
            "forwarded": forwarded or {},
            "listed": listed,
            # with --kamailio-ws: whether its WebSocket listener accepts connections (null: not asked)
            **({"ws_listening": bool(ws_listening)} if kamailio_ws else {}),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--rpc", required=True, help="Kamailio JSON-RPC URL")
    parser.add_argument("--registration-prefix", default="genesys-reg-")
    parser.add_argument("--drain-from", choices=("kamailio", "static"), help="move the clients off this mode's path")
    parser.add_argument("--drain-wait", type=float, default=1800, help="longest wait for a call to end (seconds)")
    parser.add_argument("--force", action="store_true", help="close every connection now, calls included")
    parser.add_argument("--asterisk-ws", default="127.0.0.1:8088", help="Asterisk's WebSocket address:port")
    parser.add_argument(
        "--kamailio-ws", help="Kamailio's WebSocket address:port: report whether it accepts connections"
    )
    args = parser.parse_args(argv)
    if args.drain_from:
        path = OldPath(args.project, args.rpc, args.drain_from, args.asterisk_ws)
        result = drain(path, args.drain_wait, args.force)
    else:
        result = state(args.project, args.rpc, args.registration_prefix, args.kamailio_ws)
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
