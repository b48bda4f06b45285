#!/usr/bin/env python3
"""Pre-flight of a mode switch: does the gateway host have what the switch needs?

    preflight_host.py --ports '[["tcp", "127.0.0.54", 8080, "kamailio"], ...]' --genesys 127.0.0.81:5060

Checks, changing nothing:
  - Docker answers and compose v2 (>= 2.18) is installed;
  - every listener the target mode needs is either free or held by the daemon that should own it
    (a port held by another program is a clash the switch would only discover half-way);
  - Genesys answers a SIP OPTIONS over UDP (any SIP response counts: reachable).
Exits 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import socket
import subprocess
import sys

_SS = re.compile(r"^(?P<proto>tcp|udp)\s+\S+\s+\d+\s+\d+\s+(?P<local>\S+):(?P<port>\d+)\s+\S+\s*(?P<users>.*)$")


_WILDCARDS = ("0.0.0.0", "*", "::")  # noqa: S104 - listeners on every address clash too


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def check_docker() -> list[str]:
    if run("docker", "info", "--format", "{{.ServerVersion}}").returncode != 0:
        return ["Docker does not answer on this host (docker info failed)"]
    version = run("docker", "compose", "version", "--short").stdout.strip().lstrip("v")
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    if len(parts) < 2 or tuple(parts) < (2, 18):
        return [f"docker compose v2 >= 2.18 is required (found '{version or 'none'}')"]
    return []


def listeners() -> list[tuple[str, str, int, str]]:
    out = run("ss", "-H", "-lntup").stdout
    found = []
    for line in out.splitlines():
        match = _SS.match(line.strip())
        if match:
            names = re.findall(r'\("([^"]+)"', match.group("users"))
            local = match.group("local").strip("[]")
            found.append((match.group("proto"), local, int(match.group("port")), ",".join(names)))
    return found


def check_ports(wanted: list[list[object]]) -> list[str]:
    problems = []
    current = listeners()
    for proto, address, port, owner in wanted:
        for l_proto, l_address, l_port, l_names in current:
            if l_proto != proto or l_port != port or l_address not in (address, *_WILDCARDS):
                continue
            if str(owner) not in l_names.split(","):
                problems.append(
                    f"{proto} {address}:{port} is needed by {owner} but is held by {l_names or 'an unknown process'}"
                )
    return problems


def check_genesys(target: str, timeout: float = 3.0) -> list[str]:
    host, _, port = target.rpartition(":")
    call_id = secrets.token_hex(8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, int(port)))
        local, local_port = sock.getsockname()
        message = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local}:{local_port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:preflight@{local}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.send(message.encode())
            reply = sock.recv(65535).decode(errors="replace")
        except OSError as exc:
            return [f"Genesys {target} did not answer a SIP OPTIONS within {timeout:.0f} s ({exc.__class__.__name__})"]
    if not reply.startswith("SIP/2.0 "):
        return [f"Genesys {target} answered something that is not SIP"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", required=True, help="JSON list of [proto, address, port, owner]")
    parser.add_argument("--genesys", required=True, help="host:port")
    args = parser.parse_args(argv)
    problems = check_docker() + check_ports(json.loads(args.ports)) + check_genesys(args.genesys)
    for problem in problems:
        print(f"- {problem}")
    print(json.dumps({"problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
