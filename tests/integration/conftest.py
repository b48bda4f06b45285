"""Integration tests run on the embedded lab (`make lab`): real nginx, Kamailio, Asterisk and
a real registrar standing in for Genesys, driven over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab import DN_PASSWORDS, FAR_END_PORT, GENESYS, LAB_VARS, ensure_mode, forwarded_bindings, run_client, wait_for
from lab.browser import Browser
from lab.farend import FarEnd


@pytest.fixture(scope="module")
def kamailio_mode() -> None:
    ensure_mode("kamailio")


@pytest.fixture
def clean_dns() -> Iterator[None]:
    """Each test starts and ends with no forwarded binding for the lab DNs."""

    def clean() -> None:
        for dn, password in DN_PASSWORDS.items():
            if forwarded_bindings(dn):
                run_client({dn: password}, "unregister")
            wait_for(f"{dn} unbound", lambda dn=dn: not forwarded_bindings(dn), timeout=5)

    clean()
    yield
    clean()


@pytest.fixture(scope="module")
def fifty_dns() -> Iterator[dict[str, str]]:
    """50 DNs provisioned in Asterisk by the roles (extra DNs 2000-2047), lab DNs restored after."""
    extra = {str(2000 + i): f"lab-{2000 + i}-secret" for i in range(48)}
    dns = [*LAB_VARS["webrtc_dns"], *({"dn": dn, "password": pw} for dn, pw in extra.items())]
    ensure_mode("kamailio", {"webrtc_dns": dns})
    yield {**DN_PASSWORDS, **extra}
    ensure_mode("kamailio", {"webrtc_dns": LAB_VARS["webrtc_dns"]})


# Calls (test_calls.py, test_switch_calls.py): one headless Chromium and one far end per module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as started:
        yield started


@pytest.fixture(scope="module")
def far_end() -> Iterator[FarEnd]:
    with FarEnd(bind=GENESYS, sip_port=FAR_END_PORT) as peer:
        yield peer
