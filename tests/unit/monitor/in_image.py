#!/usr/bin/env python3
"""Container side of test_in_image.py: the monitor, as the image runs it, against real Asterisk and Kamailio.

Runs in a throwaway container of the gateway image (``--network none``) next to capture_ami.py and
the monitor package under /capture. Starts the "Genesys" responder, Asterisk (kamailio mode) and
Kamailio the way capture_ami.py does, then ``python3 -m registration_monitor --config ...``, drives
registrations through Kamailio, restarts Asterisk once, and prints one JSON document with what the
monitor served and logged. Stdlib only (the image's python3).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from capture_ami import SipClient, cli, genesys_responder, start_asterisk, start_kamailio
from polling import wait_for

BASE = "http://127.0.0.1:9110"


def get(path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(BASE + path, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def state() -> dict[str, Any]:
    status, body = get("/state")
    return json.loads(body) if status == 200 else {}


def counted(registered: int, bound: int) -> dict[str, Any] | None:
    """The /state document once it counts ``registered`` DNs at Asterisk and ``bound`` at Genesys."""
    document = state()
    counts = document.get("counts", {})
    if counts.get("registered_asterisk") == registered and counts.get("bound_genesys") == bound:
        return document
    return None


def resynced() -> dict[str, Any] | None:
    document = state()
    return document if document.get("ami_connected") and document.get("synced") else None


def main() -> int:
    root = Path(__file__).resolve().parent
    stop, silent = threading.Event(), threading.Event()
    threading.Thread(target=genesys_responder, args=(stop, silent), daemon=True).start()
    asterisk = start_asterisk(root / "asterisk.log")
    kamailio = start_kamailio(root / "kamailio.log")
    out, err = (root / "monitor.stdout").open("wb"), (root / "monitor.stderr").open("wb")
    monitor = subprocess.Popen(
        ["python3", "-m", "registration_monitor", "--config", str(root / "monitor.json")],
        cwd=root,
        stdout=out,
        stderr=err,
    )
    result: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        wait_for("healthz 200", lambda: get("/healthz")[0] == 200)
        result["healthz_up"] = json.loads(get("/healthz")[1])
        client = SipClient()
        result["register"] = {"1002": client.register("1002", 600), "1003": client.register("1003", 600)}
        result["state_registered"] = wait_for("both DNs registered, Kamailio's outcomes read", lambda: counted(2, 1))
        result["metrics"] = get("/metrics")[1]
        cli("core stop now")
        asterisk.wait(timeout=30)
        result["healthz_down"] = wait_for("healthz 503", lambda: get("/healthz")[0] == 503 and get("/healthz"))
        asterisk = start_asterisk(root / "asterisk.log")
        result["state_after_restart"] = wait_for("the monitor back in sync", resynced)
        client.register("1002", 0)
        result["state_after_unregister"] = wait_for("1002 gone at Asterisk and Genesys", lambda: counted(1, 0))
    finally:
        monitor.terminate()
        result["monitor_exit"] = monitor.wait(timeout=15)
        out.close()
        err.close()
        cli("core stop now")
        asterisk.wait(timeout=30)
        kamailio.terminate()
        kamailio.wait(timeout=30)
        stop.set()
    result["stdout"] = (root / "monitor.stdout").read_text()
    result["stderr"] = (root / "monitor.stderr").read_text()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
