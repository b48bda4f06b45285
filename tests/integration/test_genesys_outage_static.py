"""Static mode, Genesys comes back (issue 28, item 4): Asterisk would send each static registration
again only at its refresh (600 s) or after a failed attempt, so a Genesys that stopped answering for
less than that and came back without its bindings left every DN unreachable while Asterisk said
"Registered". The registration monitor probes Genesys with OPTIONS and, when it answers again, has
Asterisk send every static registration again (AMI PJSIPRegister), paced.

Real Asterisk registering 200 DNs at the stand-in, the real monitor; the stand-in's own bindings are
the oracle, sampled every 100 ms."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from lab import (
    DN_PASSWORDS,
    LAB_VARS,
    ensure_mode,
    error_lines,
    genesys_bindings,
    is_static_contact,
    service_log,
    standin_forget,
    standin_state,
    utc_now,
    wait_for,
)

STATIC_DNS = {**DN_PASSWORDS, **{str(3000 + i): f"lab-{3000 + i}-secret" for i in range(198)}}
SAMPLE_S = 0.1


def statically_bound() -> set[str]:
    """DNs holding Asterisk's static (;line=) contact at the stand-in."""
    return {dn for dn, bindings in genesys_bindings().items() if any(is_static_contact(b["contact"]) for b in bindings)}


@pytest.fixture(scope="module")
def two_hundred_static_dns() -> Iterator[set[str]]:
    """Static mode with 200 DNs, each registered by Asterisk at the stand-in."""
    dns = [{"dn": dn, "password": pw} for dn, pw in sorted(STATIC_DNS.items())]
    ensure_mode("static", {"webrtc_dns": dns})
    try:
        wait_for("200 static registrations bound", lambda: statically_bound() >= set(STATIC_DNS), timeout=60)
        yield set(STATIC_DNS)
    finally:
        standin_state(0)
        ensure_mode("kamailio", {"webrtc_dns": LAB_VARS["webrtc_dns"]})


@pytest.mark.parametrize(("state", "down_s"), [(1, 30), (2, 10)], ids=["silent-30s", "503-10s"])
def test_static_registrations_are_bound_again_when_genesys_comes_back(
    two_hundred_static_dns: set[str], state: int, down_s: int
) -> None:
    """Genesys stops answering (silence or 503) and comes back having forgotten every binding: every
    static DN is bound again within 10 s + N/200 s, no refresh due, no agent doing anything."""
    dns = two_hundred_static_dns
    started = utc_now()
    standin_state(state)
    try:
        standin_forget(dns)  # a restarted registrar
        time.sleep(down_s)
        assert not statically_bound() & dns  # no refresh was due: left alone, they stay unbound
    finally:
        standin_state(0)
    back = time.monotonic()
    limit = 10 + len(dns) / 200
    wait_for(f"all {len(dns)} DNs bound again", lambda: statically_bound() >= dns, timeout=limit, interval=SAMPLE_S)
    took = time.monotonic() - back
    how = "silent" if state == 1 else "503"
    print(f"static mode, Genesys back after {down_s} s ({how}): {len(dns)} DNs bound again in {took:.1f} s (< 0.1 s)")
    monitor = service_log("registration-monitor", started)
    assert "stopped answering" in monitor and "answers again" in monitor, monitor[-2000:]
    assert f"{len(dns)} static registration(s) sent again" in monitor, monitor[-2000:]
    for service in ("asterisk", "registration-monitor"):
        assert error_lines(service_log(service, started)) == [], service
