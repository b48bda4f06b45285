#!/usr/bin/env python3
"""Report the gateway's registration state as JSON (stdlib only; runs on the gateway host).

    gateway-state --project /opt/gcti_apps/webrtc-genesys --rpc http://127.0.0.1:5071

Prints {"mode", "services", "bound", "asterisk": {"contacts", "registrations"}, "kamailio": {"forwarded"}}:
  bound          {"static": [DN...], "forwarded": [DN...]}: DNs bound at Genesys by each path.
  contacts       DN -> list of {"uri", "status"}: the clients registered at Asterisk.
  registrations  DN -> {"name", "status", "expires"}: Asterisk's static registrations at Genesys.
  forwarded      DN -> {"code", "expires", "time"}: Genesys's last answer to Kamailio's mirror.
The switch playbooks read it to decide when a step is done and to print their summary.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

_CONTACT = re.compile(r"^\s*Contact:\s+(?P<aor>[^/\s]+)/(?P<uri>\S+)\s+\S+\s+(?P<status>\S+)")
_REGISTRATION = re.compile(
    r"^\s*(?P<name>[^/\s]+)/(?P<server>\S+)\s+(?P<auth>\S+)\s+(?P<status>Registered|Unregistered|Rejected|Stopped|Stopping)"
    r"(?:\s+\(exp\.\s*(?P<expires>-?\d+)s\))?"
)
_SERVICES = ("nginx", "kamailio", "asterisk", "registration-monitor")


def compose(project: Path, *args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "compose", "--project-directory", str(project), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def running_services(project: Path) -> dict[str, bool]:
    result = compose(project, "ps", "--status", "running", "--format", "{{.Service}}")
    up = set(result.stdout.split())
    return {name: name in up for name in _SERVICES}


def asterisk_cli(project: Path, command: str) -> str:
    result = compose(project, "exec", "-T", "asterisk", "asterisk", "-rx", command)
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
    """Kamailio's htable.dump of fwdres: "<code>|<expires>|<unix time>" per DN."""
    forwarded: dict[str, dict[str, Any]] = {}
    for bucket in result or []:
        for item in bucket.get("slot", []):
            code, _, rest = str(item.get("value", "")).partition("|")
            expires, _, stamp = rest.partition("|")
            try:
                forwarded[str(item["name"])] = {"code": int(code), "expires": int(expires), "time": int(stamp)}
            except (KeyError, ValueError):
                continue
    return forwarded


def kamailio_forwarded(rpc_url: str) -> dict[str, dict[str, Any]] | None:
    body = json.dumps({"jsonrpc": "2.0", "method": "htable.dump", "params": ["fwdres"], "id": 1}).encode()
    if not rpc_url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {rpc_url}")
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - operator-set URL
            reply = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return parse_htable_dump(reply.get("result"))


def state(project: Path, rpc_url: str, prefix: str) -> dict[str, Any]:
    services = running_services(project)
    mode_file = project / "mode"
    asterisk: dict[str, Any] = {"contacts": {}, "registrations": {}}
    if services["asterisk"]:
        asterisk["contacts"] = parse_contacts(asterisk_cli(project, "pjsip show contacts"))
        asterisk["registrations"] = parse_registrations(asterisk_cli(project, "pjsip show registrations"), prefix)
    forwarded = kamailio_forwarded(rpc_url) if services["kamailio"] else None
    now = time.time()
    bound_static = sorted(dn for dn, reg in asterisk["registrations"].items() if reg["status"] == "Registered")
    bound_forwarded = sorted(
        dn
        for dn, fwd in (forwarded or {}).items()
        if 200 <= fwd["code"] < 300 and fwd["expires"] > 0 and fwd["time"] + fwd["expires"] > now
    )
    return {
        "bound": {"static": bound_static, "forwarded": bound_forwarded},
        "mode": mode_file.read_text().strip() if mode_file.exists() else None,
        "services": services,
        "asterisk": asterisk,
        "kamailio": {"reachable": forwarded is not None, "forwarded": forwarded or {}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--rpc", required=True, help="Kamailio JSON-RPC URL")
    parser.add_argument("--registration-prefix", default="genesys-reg-")
    args = parser.parse_args(argv)
    json.dump(state(args.project, args.rpc, args.registration_prefix), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
