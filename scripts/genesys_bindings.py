#!/usr/bin/env python3
"""Print the Genesys stand-in's bindings as JSON: {"1002": [{"contact": "...", "expires": 598}]}.

LAB ONLY. Reads the stand-in registrar (Kamailio usrloc) over JSON-RPC (ul.dump).
Works the same whichever behaviour (multiple/single contact) the stand-in runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from typing import Any


def dump(rpc_url: str, timeout: float = 3.0) -> dict[str, list[dict[str, Any]]]:
    body = json.dumps({"jsonrpc": "2.0", "method": "ul.dump", "id": 1}).encode()
    if not rpc_url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {rpc_url}")
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - lab loopback URL
        reply = json.load(response)
    return parse_ul_dump(reply)


def remaining(expires: Any) -> int | None:
    """Seconds a contact has left; None once it ran out.

    usrloc prints "expired" or "deleted" for a contact its timer has not purged yet (it runs
    once a minute): such a contact is not a binding any more.
    """
    if isinstance(expires, int) or (isinstance(expires, str) and expires.lstrip("-").isdigit()):
        return int(expires) if int(expires) > 0 else None
    return 0 if expires == "permanent" else None


def parse_ul_dump(reply: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    bindings: dict[str, list[dict[str, Any]]] = {}
    for domain in reply.get("result", {}).get("Domains", []):
        for aor in domain.get("Domain", {}).get("AoRs", []):
            info = aor.get("Info", {})
            contacts = [
                {"contact": c["Contact"]["Address"], "expires": expires}
                for c in info.get("Contacts", [])
                if (expires := remaining(c["Contact"]["Expires"])) is not None
            ]
            if contacts:
                bindings[str(info.get("AoR"))] = sorted(contacts, key=lambda c: c["contact"])
    return dict(sorted(bindings.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rpc", default="http://127.0.0.81:8081/RPC")
    args = parser.parse_args(argv)
    json.dump(dump(args.rpc), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
