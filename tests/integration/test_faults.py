"""Faults survived (issue: reliability and security): real daemons, real clients, real faults.

Each test holds real JsSIP clients over wss through nginx, breaks one part of the system the
way production breaks, and checks that no registration is lost for good: the Genesys stand-in
down, Asterisk restarted, Kamailio killed, the Docker daemon restarted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from lab import (
    DN_PASSWORDS,
    GATEWAY,
    LAB_VARS,
    ROOT,
    STANDIN_PROJECT,
    Client,
    asterisk_cli,
    compose,
    container_state,
    forwarded_bindings,
    gateway_state,
    genesys_bindings,
    held_clients,
    kamailio_rpc,
    service_log,
    spawn_hold_client,
    wait_for,
)
from lab.rawsip import Register, UdpSip

# Short registrations so that "by the next refresh" is seconds, not minutes: Asterisk grants
# 70 s (its minimum is 60), JsSIP refreshes after about half of that.
EXPIRES = "70"
REFRESH_WAIT = 70.0
SIP_PORT = int(LAB_VARS.get("webrtc_kamailio_sip_port", 5070))
USERS = dict(sorted(DN_PASSWORDS.items()))

pytestmark = pytest.mark.usefixtures("kamailio_mode", "clean_dns")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kamailio_log_since(since: str) -> str:
    return service_log("kamailio", since=since)


def all_bound(dns: list[str] | dict[str, str]) -> bool:
    return all(forwarded_bindings(dn) for dn in dns)


def forwarded_dns() -> set[str]:
    """DNs in Kamailio's mirror table (what it would re-assert or withdraw)."""
    dump = kamailio_rpc("htable.dump", "fwd") or []
    return {str(item["name"]) for slot in dump for item in slot.get("slot", [])}


def standin_answering() -> bool:
    try:
        genesys_bindings()
    except OSError:
        return False
    return True


def asterisk_booted() -> bool:
    out = compose("exec", "-T", "asterisk", "asterisk", "-rx", "core waitfullybooted", check=False)
    return "fully booted" in out


def running(service: str) -> bool:
    state = container_state(service)
    return bool(state and state["Running"])


@pytest.fixture
def standin_restored() -> Iterator[None]:
    yield
    compose("start", "genesys", project=STANDIN_PROJECT)
    wait_for("the stand-in answering", standin_answering, timeout=20)


@pytest.fixture
def asterisk_restored() -> Iterator[None]:
    yield
    if not running("asterisk"):
        compose("start", "asterisk")
    wait_for("Asterisk fully booted", asterisk_booted, timeout=60)


def test_genesys_down_clients_still_registered_and_bound_again_by_next_refresh(standin_restored: None) -> None:
    compose("stop", "genesys", project=STANDIN_PROJECT)
    kamailio_before = container_state("kamailio")
    since = now_iso()
    # Clients register while Genesys is away: Asterisk still answers 200 to each of them.
    with held_clients(USERS, "--expires", EXPIRES) as client:
        registered = [e for e in client.events if e["event"] == "registered"]
        assert {e["dn"] for e in registered} == set(USERS)
        # Kamailio logs each failed forward (a local timeout: nobody answers at Genesys).
        for dn in USERS:
            wait_for(
                f"Kamailio logging the failed forward for {dn}",
                lambda dn=dn: re.search(rf"reply for DN {dn} \(expires \d+\): timeout", kamailio_log_since(since)),
                timeout=15,
            )
        assert not standin_answering(), "the stand-in should still be down here"
        compose("start", "genesys", project=STANDIN_PROJECT)
        wait_for("the stand-in answering", standin_answering, timeout=20)
        assert not any(forwarded_bindings(dn) for dn in USERS), "bound before any refresh?"
        # No restart of anything: the clients' next refresh binds every DN again.
        wait_for("every DN bound again after the clients' refresh", lambda: all_bound(USERS), timeout=REFRESH_WAIT)
        assert client.proc.poll() is None
    after = container_state("kamailio")
    assert after and kamailio_before and after["StartedAt"] == kamailio_before["StartedAt"], "Kamailio was restarted"


def test_asterisk_restart_clean_error_while_away_and_no_binding_left_for_a_client_gone(
    asterisk_restored: None,
) -> None:
    stays, leaves = sorted(USERS)
    with held_clients({stays: USERS[stays]}, "--expires", EXPIRES) as staying:
        leaving = Client(spawn_hold_client({leaves: USERS[leaves]}, "--expires", EXPIRES))
        try:
            leaving.read_until("registered", {leaves})
            wait_for("both DNs bound", lambda: all_bound(USERS), timeout=10)
            compose("stop", "asterisk")
            # While Asterisk is away, Kamailio answers a REGISTER with a clean error, promptly.
            with UdpSip(GATEWAY, SIP_PORT, bind="127.0.0.62") as udp:
                via = f"{udp.local[0]}:{udp.local[1]}"
                reg = Register(GATEWAY, stays, stays, f"sip:{stays}@{via}", via, transport="UDP", expires=60)
                started = time.monotonic()
                answer = udp.send(reg.render(), timeout=10)
                waited = time.monotonic() - started
            assert answer is not None, "no answer from Kamailio while Asterisk is down"
            assert (answer.status, answer.reason) == (503, "Registrar Unavailable")
            assert waited < 10
        finally:
            # This agent's client does not come back (closed while Asterisk was away).
            leaving.stop()
        since = now_iso()
        compose("start", "asterisk")
        wait_for("Asterisk fully booted", asterisk_booted, timeout=60)
        # The staying client re-registers with the restarted Asterisk, and is mirrored again.
        wait_for(
            f"{stays} re-registered through the restarted Asterisk and bound at Genesys",
            lambda: re.search(
                rf"Genesys REGISTER reply for DN {stays} \(expires \d+\): 200", kamailio_log_since(since)
            ),
            timeout=REFRESH_WAIT,
        )
        # The DN whose client is gone: its binding at Genesys runs out with the registration
        # Asterisk granted (mirrored expiry), and nothing ever renews it.
        wait_for(f"no binding left for {leaves}", lambda: not forwarded_bindings(leaves), timeout=REFRESH_WAIT)
        assert forwarded_bindings(stays), f"{stays} lost its binding"
        # Asterisk purges run-out contacts on a 30 s timer: it agrees with Genesys soon after.
        wait_for(
            f"Asterisk without a contact for {leaves}",
            lambda: f"{leaves}/sip:" not in asterisk_cli("pjsip show contacts"),
            timeout=40,
        )
        assert staying.proc.poll() is None


def test_kamailio_killed_restart_policy_brings_it_back_and_bindings_recover() -> None:
    with held_clients(USERS) as client:
        wait_for("every DN bound", lambda: all_bound(USERS), timeout=10)
        before = container_state("kamailio")
        assert before and before["Running"]
        since = now_iso()
        os.kill(int(before["Pid"]), signal.SIGKILL)  # a crash, not a `docker stop`

        def restarted() -> dict[str, Any] | None:
            state = container_state("kamailio")
            return state if state and state["Running"] and state["RestartCount"] > before["RestartCount"] else None

        wait_for("Kamailio restarted by the compose restart policy", restarted, timeout=30)
        # The clients' sockets broke with Kamailio: they reconnect and register again.
        client.read_until("registered", set(USERS), timeout=30)
        wait_for(
            "every DN mirrored again by the new Kamailio",
            # "Mirrored" means Genesys answered 2xx (Kamailio's fwd entry is set on sending).
            lambda: all(
                re.search(rf"Genesys REGISTER reply for DN {dn} \(expires \d+\): 2\d\d", kamailio_log_since(since))
                for dn in USERS
            ),
            timeout=15,
        )
        assert forwarded_dns() >= set(USERS)
        assert all_bound(USERS)


def test_docker_daemon_restart_brings_the_stack_back_in_its_mode() -> None:
    mode = gateway_state()["mode"]
    services = {s: running(s) for s in ("nginx", "kamailio", "asterisk", "registration-monitor")}
    with held_clients(USERS) as client:
        wait_for("every DN bound", lambda: all_bound(USERS), timeout=10)
        subprocess.run(["bash", str(ROOT / "scripts/dockerd.sh"), "restart"], check=True, timeout=180)
        wait_for(
            "every gateway service running again",
            lambda: all(running(s) == was for s, was in services.items()),
            timeout=60,
        )
        wait_for("the stand-in answering", standin_answering, timeout=30)
        assert gateway_state()["mode"] == mode
        client.read_until("registered", set(USERS), timeout=60)
        wait_for("every DN bound again", lambda: all_bound(USERS), timeout=20)
