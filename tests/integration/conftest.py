"""Integration tests run on the embedded lab (`make lab`): real nginx, Kamailio, Asterisk and
a real registrar standing in for Genesys, driven over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab import DN_PASSWORDS, LAB_VARS, ensure_mode, forwarded_bindings, run_client, wait_for


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
