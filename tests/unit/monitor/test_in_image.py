"""The monitor as the image runs it (Debian's python3, panoramisk, aiohttp, prometheus-client) against the
real Asterisk 22 and Kamailio 6.1 of the gateway image, in one throwaway ``--network none`` container."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from lab import polling
from lab.daemons import IMAGE, docker
from monitor_capture import capture_ami
from monitor_capture.capture_ami import AMI_SECRET, AMI_USER, FAREND, render_configs
from monitor_capture.capture_calls import prepare_configs

from .test_http import STABLE_NAMES

HERE = Path(__file__).resolve().parent
# The capture tools (scripts/monitor_capture): the container side of these tests imports them.
CAPTURE = Path(capture_ami.__file__).resolve().parent
POLLING = Path(polling.__file__).resolve()  # lab's wait_for, stdlib only
PACKAGE = HERE.parents[2] / "roles" / "registration_monitor" / "files" / "registration_monitor"


def monitor_config() -> dict[str, Any]:
    return {
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


def prepare_capture_dir(work: Path, scripts: tuple[Path, ...]) -> Path:
    capture = work / "capture"
    capture.mkdir()
    for script in scripts:
        shutil.copyfile(script, capture / script.name)
    shutil.copytree(
        PACKAGE,
        capture / "registration_monitor",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (capture / "monitor.json").write_text(json.dumps(monitor_config()), encoding="utf-8")
    return capture


def run_container(work: Path, capture: Path, script: str) -> dict[str, Any]:
    kamailio = [] if not (work / "kamailio").is_dir() else ["-v", f"{work / 'kamailio'}:/etc/webrtc/kamailio:ro"]
    result = docker(
        "run", "--rm", "--network", "none", "--pull", "never",
        "-v", f"{work / 'etc'}:/etc/asterisk", *kamailio,
        "-v", f"{capture}:/capture", IMAGE, "python3", f"/capture/{script}",
        timeout=240,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in capture.glob("*.std*"))
        raise AssertionError(f"in-image run failed ({result.returncode}): {result.stderr[-2000:]}\n{logs}")
    document: dict[str, Any] = json.loads(lines[-1])
    return document


def run_in_image(work: Path) -> dict[str, Any]:
    render_configs(work / "etc")
    capture = prepare_capture_dir(work, (CAPTURE / "capture_ami.py", HERE / "in_image.py", FAREND, POLLING))
    return run_container(work, capture, "in_image.py")


def run_calls_in_image(work: Path) -> dict[str, Any]:
    """capture_calls.py's configs (plain-RTP DN 1002, read=...,call granted), calls with two far ends."""
    prepare_configs(work / "etc")
    shutil.copyfile(work / "etc" / "manager.conf.call", work / "etc" / "manager.conf")
    scripts = (
        CAPTURE / "capture_ami.py",
        CAPTURE / "capture_calls.py",
        HERE / "in_image.py",
        HERE / "in_image_calls.py",
    )
    capture = prepare_capture_dir(work, (*scripts, FAREND, POLLING))
    return run_container(work, capture, "in_image_calls.py")


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


def samples(metrics: str, prefix: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in metrics.splitlines())
        if name.startswith(prefix)
    }


@pytest.mark.daemon
def test_the_monitor_follows_real_calls_in_the_gateway_image(tmp_path: Path) -> None:
    result = run_calls_in_image(tmp_path)
    assert result["register"] == 200
    # A call answered before the monitor started: found by CoreShowChannels, no attempt counted.
    assert result["answered_before_start"] is True
    assert result["state_resynced"]["calls"] == {
        "in_progress": 1,
        "by_direction": {"inbound": 1, "outbound": 0},
        "by_dn": {"1002": 1, "1003": 0},
    }
    assert result["bye_before"] == 200
    assert result["state_ended"]["calls"]["in_progress"] == 0
    assert result["outbound_answered"] is True
    assert result["state_outbound"]["calls"]["by_direction"] == {"inbound": 0, "outbound": 1}
    assert samples(result["metrics_during_call"], "webrtc_calls_in_progress") == {
        'webrtc_calls_in_progress{direction="inbound"}': 0,
        'webrtc_calls_in_progress{direction="outbound"}': 1,
    }
    assert (
        result["inbound_busy"],
        result["inbound_cancel"],
        result["inbound_offline"],
        result["outbound_refused"],
    ) == (
        486,
        487,
        480,
        403,
    )
    final = result["metrics_final"]
    for name in STABLE_NAMES:
        assert f"\n# TYPE {name} " in final, name
    assert samples(final, "webrtc_calls_in_progress") == {
        'webrtc_calls_in_progress{direction="inbound"}': 0,
        'webrtc_calls_in_progress{direction="outbound"}': 0,
    }
    assert samples(final, "webrtc_call_attempts_total") == {
        'webrtc_call_attempts_total{direction="inbound"}': 3,
        'webrtc_call_attempts_total{direction="outbound"}': 2,
    }
    failures = {name: value for name, value in samples(final, "webrtc_call_setup_failures_total").items() if value}
    assert failures == {
        'webrtc_call_setup_failures_total{direction="inbound",reason="busy"}': 1,
        'webrtc_call_setup_failures_total{direction="inbound",reason="cancel"}': 1,
        'webrtc_call_setup_failures_total{direction="inbound",reason="chanunavail"}': 1,
        'webrtc_call_setup_failures_total{direction="outbound",reason="rejected_number"}': 1,
    }
    assert result["state_final"]["calls"]["in_progress"] == 0
    assert result["monitor_exit"] == 0
    events = [json.loads(line) for line in result["stdout"].splitlines()]
    calls = [event for event in events if event["event"].startswith("Call")]
    assert all(
        set(event) == {"time", "dn", "event", "direction", "reason", "number", "call", "source", "mode"}
        for event in calls
    )
    assert [(event["event"], event["direction"], event["reason"], event["source"]) for event in calls] == [
        ("CallStarted", "inbound", "", "asterisk-calls-sync"),
        ("CallEnded", "inbound", "", "asterisk-calls"),
        ("CallStarted", "outbound", "", "asterisk-calls"),
        ("CallEnded", "outbound", "", "asterisk-calls"),
        ("CallFailed", "inbound", "busy", "asterisk-calls"),
        ("CallFailed", "inbound", "cancel", "asterisk-calls"),
        ("CallFailed", "inbound", "chanunavail", "asterisk-calls"),
        ("CallFailed", "outbound", "rejected_number", "asterisk-calls"),
    ]
    assert "1 call(s) in progress" in result["stderr"]
    assert AMI_SECRET not in result["stdout"] + result["stderr"]
