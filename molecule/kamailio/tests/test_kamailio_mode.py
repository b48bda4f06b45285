"""kamailio mode, as an operator checks it after `revert.yml`."""

from __future__ import annotations

import time

import pytest
from lab import (
    ASTERISK_SIP,
    DN_PASSWORDS,
    FORWARDED_PREFIX,
    GATEWAY,
    HEALTHZ_URL,
    PROJECT,
    asterisk_cli,
    compose,
    genesys_bindings,
    held_clients,
    run_client,
    service_log,
    wait_for,
    wait_for_text,
)
from lab.common_checks import (  # noqa: F401 - shared operator checks, collected here
    test_an_inbound_call_from_genesys_is_answered_with_audio_both_ways,
    test_nginx_config_is_valid_for_nginx,
    test_registration_monitor_is_healthy,
    test_secret_files_are_not_world_readable,
)
from lab.common_checks import test_no_error_lines_since_start as no_error_lines_since_start

SEED_SEQUENCE = [
    "REGISTER from sip:1002@",
    "Initial REGISTER - forwarding to Asterisk for auth challenge",
    "Asterisk REGISTER reply: 401 Unauthorized",
    "Authenticated REGISTER - validating with Asterisk then forwarding to Genesys",
    "Asterisk REGISTER reply: 200 OK",
    "Asterisk accepted REGISTER - now forwarding to Genesys",
    "Sending REGISTER to Genesys for DN 1002",
    "Genesys REGISTER reply for DN 1002",
]


@pytest.fixture
def running_services() -> list[str]:
    return ["nginx", "kamailio", "asterisk", "registration-monitor"]


def test_kamailio_websocket_port_is_listening(host) -> None:
    assert host.socket(f"tcp://{GATEWAY}:8080").is_listening


def test_kamailio_sip_listener_is_up(host) -> None:
    assert host.socket(f"udp://{GATEWAY}:5070").is_listening


def test_all_services_run(host) -> None:
    running = compose("ps", "--status", "running", "--format", "{{.Service}}").split()
    assert sorted(running) == ["asterisk", "kamailio", "nginx", "registration-monitor"]


def test_no_static_registrations() -> None:
    assert "No objects found." in asterisk_cli("pjsip show registrations")
    lines = (PROJECT / "asterisk/etc/pjsip.conf").read_text().splitlines()
    assert "type=registration" not in [line.strip() for line in lines]


def test_nginx_sends_ws_to_kamailio(host) -> None:
    conf = host.file(str(PROJECT / "nginx/nginx.conf")).content_string
    assert f"server {GATEWAY}:8080;" in conf
    health = host.run(f"curl -sk {HEALTHZ_URL}")
    assert health.stdout.strip() == "ok kamailio"


def test_wss_register_follows_seed_sequence_and_binds_at_genesys() -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    with held_clients({"1002": DN_PASSWORDS["1002"]}):
        binding = wait_for(
            "1002 bound at the Genesys stand-in through Kamailio",
            lambda: [b for b in genesys_bindings().get("1002", []) if ";line=" not in b["contact"]],
        )
        assert binding[0]["contact"] == f"sip:{FORWARDED_PREFIX}1002@{ASTERISK_SIP}"
        assert 590 <= binding[0]["expires"] <= 600
        assert "1002/" in asterisk_cli("pjsip show contacts")
        log = wait_for_text(
            "Genesys's answer in Kamailio's log",
            lambda: service_log("kamailio", since=since),
            "Genesys REGISTER reply for DN 1002",
        )
    positions = [log.find(step) for step in SEED_SEQUENCE]
    assert -1 not in positions, dict(zip(SEED_SEQUENCE, positions, strict=True))
    assert positions == sorted(positions), "the seed's log sequence is out of order"
    # Fewer, richer lines (each is paid for in the container runtime's log path): the
    # challenge, the accepted REGISTER with its forward to Genesys, and Genesys's answer.
    # Each request's line carries Asterisk's answer (no line for the request alone), and the
    # accepted one its forward to Genesys.
    requests = [line for line in log.splitlines() if "REGISTER from sip:1002@" in line]
    assert requests, log[-2000:]
    assert all("| Asterisk REGISTER reply: " in line for line in requests), requests
    accepted = [line for line in requests if "Asterisk REGISTER reply: 200 OK" in line]
    assert any("| Sending REGISTER to Genesys for DN 1002" in line for line in accepted), requests


def test_unregister_removes_the_genesys_binding() -> None:
    run_client({"1002": DN_PASSWORDS["1002"]}, "register")
    wait_for(
        "1002 bound at the stand-in before the un-REGISTER",
        lambda: [b for b in genesys_bindings().get("1002", []) if b["contact"].startswith(f"sip:{FORWARDED_PREFIX}")],
        timeout=5,
    )
    run_client({"1002": DN_PASSWORDS["1002"]}, "unregister")
    wait_for(
        "1002's forwarded binding removed at the stand-in",
        lambda: not [b for b in genesys_bindings().get("1002", []) if ";line=" not in b["contact"]],
        timeout=3,
    )


# Last in the module (pytest runs a module's tests in the order they appear): the daemons' logs
# are checked after the scenario's own tests have made them work, not before.
def test_no_error_lines_after_the_scenario(running_services: list[str]) -> None:
    no_error_lines_since_start(running_services)
