"""Operator checks that hold in both modes. Imported by both molecule scenarios' tests."""

from __future__ import annotations

import stat
import urllib.request

from lab import DN_PASSWORDS, GATEWAY, GENESYS, LAB_VARS, PROJECT, compose, container_state, error_lines, wait_for
from lab.browser import Browser
from lab.farend import FarEnd

SECRET_FILES = (
    "asterisk/etc/pjsip.conf",
    "asterisk/etc/manager.conf",
    "kamailio/kamailio-proxy.cfg",
    "registration-monitor/etc/monitor.json",
)


def _started_at(service: str) -> str | None:
    state = container_state(service)
    return state["StartedAt"] if state else None


def test_no_error_lines_since_start(running_services: list[str]) -> None:
    """Every running daemon's log since its last start is free of ERROR/CRITICAL lines.

    Asterisk drops a bad config object and keeps running: only its log tells.
    """
    problems: dict[str, list[str]] = {}
    for service in running_services:
        since = _started_at(service)
        assert since, f"{service} has no container"
        log = compose("logs", "--no-log-prefix", "--no-color", "--since", since, service)
        if errors := error_lines(log):
            problems[service] = errors[:5]
    assert problems == {}


def test_secret_files_are_not_world_readable() -> None:
    for relative in SECRET_FILES:
        mode = (PROJECT / relative).stat().st_mode
        assert mode & stat.S_IRWXO == 0, f"{relative} is {oct(mode & 0o777)}"


def test_nginx_config_is_valid_for_nginx() -> None:
    out = compose("exec", "-T", "nginx", "nginx", "-t", "-c", "/etc/webrtc/nginx/nginx.conf")
    assert "test is successful" in out


def test_registration_monitor_is_healthy() -> None:
    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://{GATEWAY}:9110/healthz", timeout=3) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for("the registration monitor's /healthz", healthy, timeout=30)


def test_an_inbound_call_from_genesys_is_answered_with_audio_both_ways() -> None:
    """What the registration is for: Genesys calls agent 1002, whose browser (JsSIP in headless
    Chromium) answers; audio flows both ways (getStats in the browser, energy at the far end)."""
    with Browser() as browser, FarEnd(bind=GENESYS, sip_port=5090) as far_end:
        phone = browser.new_phone("1002", DN_PASSWORDS["1002"])
        phone.wait_registered(15)
        mark = phone.mark()
        call = far_end.invite(f"sip:1002@{GENESYS}", proxy=(GENESYS, int(LAB_VARS["webrtc_genesys_port"])))
        assert call.wait_answered(15), f"Genesys's call was not answered: {call.final_status}"
        phone.wait_event("confirmed", 10, since=mark)
        stats = phone.wait_media(min_packets=50, timeout=15)
        assert stats["dtlsState"] == "connected", stats
        assert call.rtp_received > 20 and call.audio_energy() > 100, "the far end does not hear the agent"
        assert call.bye() == 200
        phone.wait_event("ended", 10, since=mark)
        phone.close()
