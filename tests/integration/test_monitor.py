"""The registration monitor, as an operator relies on it: /metrics and /healthz on the lab."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest
from lab import (
    DN_PASSWORDS,
    MONITOR,
    STANDIN_PROJECT,
    asterisk_cli,
    compose,
    ensure_mode,
    held_clients,
    run_client,
    service_log,
    utc_now,
    wait_for,
)
from lab import (
    monitor_gauge as gauge,
)
from lab import (
    monitor_metrics as metrics,
)

DN = "1002"


def unbound_dns() -> set[str]:
    """The DNs /state shows registered at Asterisk but not bound at Genesys (the gauge's members)."""
    with urllib.request.urlopen(f"{MONITOR}/state", timeout=3) as response:
        per_dn: dict[str, dict[str, bool]] = json.load(response)["dns"]
    return {dn for dn, flags in per_dn.items() if flags["registered_asterisk"] and not flags["bound_genesys"]}


def wait_unbound(expected: set[str], timeout: float) -> None:
    """Wait until the gauge and /state both show exactly `expected` unbound; fail with what they show."""
    seen = ["nothing read"]

    def probe() -> bool:
        value, members = gauge("webrtc_directory_numbers_unbound_genesys"), unbound_dns()
        seen.append(f"gauge {value:g}, unbound in /state {sorted(members)}")
        return value == len(expected) and members == expected

    try:
        wait_for(f"unbound DNs {sorted(expected)}", probe, timeout=timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}: {seen[-1]}") from None


def healthz() -> int:
    try:
        with urllib.request.urlopen(f"{MONITOR}/healthz", timeout=3) as response:
            return int(response.status)
    except OSError as error:
        return int(getattr(error, "code", 0))


@pytest.fixture(params=["kamailio", "static"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    ensure_mode(str(request.param))
    wait_for("the monitor healthy", lambda: healthz() == 200, timeout=30)
    yield str(request.param)


def test_register_and_unregister_show_within_two_seconds(mode: str) -> None:
    run_client({DN: DN_PASSWORDS[DN]}, "unregister")  # start from a DN with no contact
    wait_for("1002 without a contact", lambda: "1002" not in asterisk_cli("pjsip show contacts"), timeout=5)
    baseline = gauge("webrtc_directory_numbers_registered_asterisk")
    with held_clients({DN: DN_PASSWORDS[DN]}, reconnect=False):
        wait_for(
            "1002 registered at Asterisk in /metrics",
            lambda: gauge("webrtc_directory_numbers_registered_asterisk") >= baseline + 1,
            timeout=2,
        )
        wait_for(
            "no DN registered but unbound", lambda: gauge("webrtc_directory_numbers_unbound_genesys") == 0, timeout=2
        )
        assert gauge("webrtc_directory_numbers_bound_genesys") >= 1
    run_client({DN: DN_PASSWORDS[DN]}, "unregister")
    wait_for(
        "1002 gone from /metrics", lambda: gauge("webrtc_directory_numbers_registered_asterisk") == baseline, timeout=2
    )


def test_standin_down_makes_the_unbound_gauge_one() -> None:
    ensure_mode("kamailio")
    # Contacts that earlier tests' one-shot clients left at Asterisk are not bound after a switch
    # (nobody refreshes them); unregister every lab DN so that only this test's DN can be counted.
    run_client(dict(DN_PASSWORDS), "unregister")
    wait_unbound(set(), timeout=10)
    before = metrics()

    def total(values: dict[str, float], family: str) -> float:
        return sum(v for k, v in values.items() if k.startswith(family + "{"))

    compose("stop", "genesys", project=STANDIN_PROJECT)
    try:
        run_client({DN: DN_PASSWORDS[DN]}, "register")
        wait_unbound({DN}, timeout=15)
        # The unanswered registration is one attempt and one failure (the alerts' failure
        # ratio), counted when Kamailio's transaction times out (kamailio_fr_timer_ms, 3 s).
        failures = "webrtc_forwarding_failures_total"
        wait_for("the failure counted", lambda: total(metrics(), failures) > total(before, failures), timeout=15)
        attempts = 'webrtc_forwarding_attempts_total{path="kamailio"}'
        assert metrics().get(attempts, 0) > before.get(attempts, 0), metrics()
    finally:
        compose("start", "genesys", project=STANDIN_PROJECT)
    run_client({DN: DN_PASSWORDS[DN]}, "register")
    wait_unbound(set(), timeout=10)
    run_client({DN: DN_PASSWORDS[DN]}, "unregister")


def registered_in_state() -> set[str]:
    """The DNs the monitor's /state shows registered at Asterisk."""
    with urllib.request.urlopen(f"{MONITOR}/state", timeout=3) as response:
        per_dn: dict[str, dict[str, bool]] = json.load(response)["dns"]
    return {dn for dn, flags in per_dn.items() if flags["registered_asterisk"]}


def test_monitor_reconnects_after_an_asterisk_restart_and_rebuilds_its_state() -> None:
    """Asterisk restarts and, before the monitor can see anything, 1003 logs out: the monitor
    (frozen meanwhile) must rebuild its state from Asterisk after it reconnects. State carried over
    from before the restart would still show 1003 registered."""
    ensure_mode("kamailio")
    users = {dn: DN_PASSWORDS[dn] for dn in ("1002", "1003")}
    run_client(users, "register")
    wait_for("1002 and 1003 registered in the monitor", lambda: registered_in_state() >= set(users), timeout=5)
    fault = utc_now()

    def contacts() -> str:  # Asterisk's own list (empty output while it restarts)
        return compose("exec", "-T", "asterisk", "asterisk", "-rx", "pjsip show contacts", check=False)

    def logged_out() -> bool:
        run_client({"1003": users["1003"]}, "unregister", check=False)
        shown = contacts()
        return "Objects found" in shown and "1003" not in shown

    compose("pause", "registration-monitor")
    try:
        compose("restart", "asterisk")
        wait_for("Asterisk back, 1003 logged out", logged_out, timeout=60, interval=1)
        assert "1002/" in contacts()  # contacts survive the restart (astdb)
    finally:
        compose("unpause", "registration-monitor")
    wait_for(
        "the monitor reconnected", lambda: healthz() == 200 and gauge("webrtc_monitor_ami_connected") == 1, timeout=60
    )
    wait_for("state rebuilt from Asterisk", lambda: {"1002", "1003"} & registered_in_state() == {"1002"}, timeout=10)
    assert gauge("webrtc_directory_numbers_registered_asterisk") == 1
    # The reconnect after this test's own fault, not an earlier one in the container's history.
    log = service_log("registration-monitor", since=fault)
    assert re.search(r"reconnect", log, re.IGNORECASE), log[-2000:]
    run_client({DN: DN_PASSWORDS[DN]}, "unregister")


def test_compose_reports_the_monitor_healthy() -> None:
    """The compose healthcheck probes /healthz: `docker compose ps` shows the monitor healthy."""
    ensure_mode("kamailio")

    def health() -> str:
        lines = [line for line in compose("ps", "--format", "json", "registration-monitor").splitlines()]
        rows = [json.loads(line) for line in lines if line.startswith("{")]
        return str(rows[0].get("Health", "")) if rows else "no container"

    wait_for("the monitor healthy in docker compose ps", lambda: health() == "healthy", timeout=60)
