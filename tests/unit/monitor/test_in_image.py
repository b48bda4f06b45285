"""The monitor as the image runs it (Debian's python3, panoramisk, aiohttp, prometheus-client) against the
real Asterisk 22 and Kamailio 6.1 of the gateway image, in one throwaway ``--network none`` container."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ..daemons import IMAGE, docker
from .capture_ami import AMI_SECRET, AMI_USER, render_configs
from .test_http import STABLE_NAMES

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[2] / "roles" / "registration_monitor" / "files" / "registration_monitor"


def run_in_image(work: Path) -> dict[str, Any]:
    render_configs(work / "etc")
    capture = work / "capture"
    capture.mkdir()
    for script in ("capture_ami.py", "in_image.py"):
        shutil.copyfile(HERE / script, capture / script)
    shutil.copytree(
        PACKAGE,
        capture / "registration_monitor",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    config = {
        "mode": "kamailio",
        "ami_host": "127.0.0.1",
        "ami_port": 5038,
        "ami_user": AMI_USER,
        "ami_secret": AMI_SECRET,
        "kamailio_rpc_url": "http://127.0.0.1:5071/RPC",
        "listen_address": "127.0.0.1",
        "listen_port": 9110,
        "poll_interval": 0.5,
        "dns": ["1002", "1003"],
        "reconnect_initial_delay": 0.5,
        "reconnect_max_delay": 2,
    }
    (capture / "monitor.json").write_text(json.dumps(config), encoding="utf-8")
    result = docker(
        "run", "--rm", "--network", "none", "--pull", "never",
        "-v", f"{work / 'etc'}:/etc/asterisk", "-v", f"{work / 'kamailio'}:/etc/webrtc/kamailio:ro",
        "-v", f"{capture}:/capture", IMAGE, "python3", "/capture/in_image.py",
        timeout=240,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in capture.glob("*.std*"))
        raise AssertionError(f"in-image run failed ({result.returncode}): {result.stderr[-2000:]}\n{logs}")
    document: dict[str, Any] = json.loads(lines[-1])
    return document


@pytest.mark.daemon
def test_the_monitor_in_the_gateway_image(tmp_path: Path) -> None:
    result = run_in_image(tmp_path)
    assert result["python"].startswith("3.")
    assert result["healthz_up"]["ami_connected"] is True
    assert result["register"] == {"1002": 200, "1003": 200}  # Asterisk accepted both; Genesys refused 1003
    registered = result["state_registered"]
    assert registered["counts"] == {"registered_asterisk": 2, "bound_genesys": 1, "unbound_genesys": 1}
    assert registered["dns"] == {
        "1002": {"registered_asterisk": True, "bound_genesys": True, "bound_static": False, "bound_kamailio": True},
        "1003": {"registered_asterisk": True, "bound_genesys": False, "bound_static": False, "bound_kamailio": False},
    }
    for name in STABLE_NAMES:
        assert f"\n{name}" in result["metrics"], name
    assert 'webrtc_forwarding_failures_total{reason="403"} 1.0' in result["metrics"]
    down_status, down_body = result["healthz_down"]
    assert down_status == 503 and json.loads(down_body)["ami_connected"] is False
    # After the restart the contacts (astdb) are back in the state without a single REGISTER.
    assert result["state_after_restart"]["counts"]["registered_asterisk"] == 2
    assert result["state_after_unregister"]["dns"]["1002"]["registered_asterisk"] is False
    assert result["monitor_exit"] == 0  # SIGTERM: a clean stop
    stderr, stdout = result["stderr"], result["stdout"]
    assert "reconnecting in" in stderr and "reconnected as monitor" in stderr
    assert "Asterisk shut down (Cleanly, restart False)" in stderr
    events = [json.loads(line) for line in stdout.splitlines()]
    assert all(set(event) == {"time", "dn", "event", "contact", "source", "mode"} for event in events)
    assert {(event["dn"], event["event"], event["source"]) for event in events} >= {
        ("1002", "NonQualified", "asterisk"),
        ("1003", "NonQualified", "asterisk"),
        ("1002", "Registered", "genesys-kamailio"),
        ("1003", "Rejected 403", "genesys-kamailio"),
        ("1002", "Removed", "asterisk"),
    }
    assert AMI_SECRET not in stdout + stderr
