"""static mode, as an operator checks it after `rollback.yml`."""

from __future__ import annotations

import pytest
from lab import (
    ASTERISK_SIP,
    DN_PASSWORDS,
    GATEWAY,
    HEALTHZ_URL,
    PROJECT,
    asterisk_cli,
    compose,
    genesys_bindings,
    held_clients,
    wait_for_text,
)
from lab.common_checks import (  # noqa: F401 - shared operator checks, collected here
    test_an_inbound_call_from_genesys_is_answered_with_audio_both_ways,
    test_nginx_config_is_valid_for_nginx,
    test_registration_monitor_is_healthy,
    test_secret_files_are_not_world_readable,
)
from lab.common_checks import test_no_error_lines_since_start as no_error_lines_since_start


@pytest.fixture
def running_services() -> list[str]:
    return ["nginx", "asterisk", "registration-monitor"]


def test_kamailio_is_stopped() -> None:
    running = compose("ps", "--status", "running", "--format", "{{.Service}}").split()
    assert sorted(running) == ["asterisk", "nginx", "registration-monitor"]


def test_nginx_sends_ws_to_asterisk(host) -> None:
    conf = host.file(str(PROJECT / "nginx/nginx.conf")).content_string
    assert f"server {GATEWAY}:8088;" in conf
    assert host.run(f"curl -sk {HEALTHZ_URL}").stdout.strip() == "ok static"


def test_every_dn_has_a_registered_static_registration() -> None:
    out = asterisk_cli("pjsip show registrations")
    for dn in DN_PASSWORDS:
        rows = [line for line in out.splitlines() if f"genesys-reg-{dn}/" in line]
        assert rows and "Registered" in rows[0], out


def test_standin_holds_the_dns_bound_by_asterisk() -> None:
    bindings = genesys_bindings()
    for dn in DN_PASSWORDS:
        lines = [b for b in bindings.get(dn, []) if b["contact"].startswith(f"sip:{dn}@{ASTERISK_SIP};line=")]
        assert lines, bindings


def test_wss_client_registers_straight_at_asterisk() -> None:
    with held_clients({"1002": DN_PASSWORDS["1002"]}):
        contacts = wait_for_text(
            "1002's WebSocket contact at Asterisk", lambda: asterisk_cli("pjsip show contacts"), "1002/"
        )
        assert "transport=ws" in contacts.lower()


# Last in the module (pytest runs a module's tests in the order they appear): the daemons' logs
# are checked after the scenario's own tests have made them work, not before.
def test_no_error_lines_after_the_scenario(running_services: list[str]) -> None:
    no_error_lines_since_start(running_services)
