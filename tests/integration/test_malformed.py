"""Malformed requests get an error answer (or are dropped) and Kamailio keeps serving."""

from __future__ import annotations

import pytest
from lab import DN_PASSWORDS, GATEWAY, LAB_VARS, ensure_mode, forwarded_bindings, run_client, wait_for
from lab.rawsip import Register, UdpSip

SIP_PORT = int(LAB_VARS.get("webrtc_kamailio_sip_port", 5070))


def valid(client: UdpSip, **changes: object) -> Register:
    via = f"{client.local[0]}:{client.local[1]}"
    reg = Register(GATEWAY, "1002", "1002", f"sip:1002@{via}", via, transport="UDP")
    for key, value in changes.items():
        setattr(reg, key, value)
    return reg


def text_without(message: str, header: str) -> str:
    return "\r\n".join(line for line in message.split("\r\n") if not line.lower().startswith(header.lower() + ":"))


CASES = {
    "max-forwards-zero": (lambda c: valid(c).render().replace("Max-Forwards: 70", "Max-Forwards: 0"), {483}),
    "missing-call-id": (lambda c: text_without(valid(c).render(), "Call-ID"), {400, None}),
    "missing-cseq": (lambda c: text_without(valid(c).render(), "CSeq"), {400, None}),
    "dn-not-allowed": (lambda c: valid(c, from_user="agent", to_user="agent").render(), {403}),
    "third-party-register": (lambda c: valid(c, from_user="1003").render(), {403}),
    "invite-not-handled": (
        lambda c: valid(c).render().replace("REGISTER sip:", "INVITE sip:", 1).replace(" REGISTER\r\n", " INVITE\r\n"),
        {501},
    ),
    "garbage": (lambda c: "\x00\x01 not sip at all \r\n\r\n", {None}),
    "oversized-header": (
        lambda c: valid(c, extra=("X-Junk: " + "a" * 30000,)).render(),
        {401, 400, 403, 413, 513, None},
    ),
}


@pytest.fixture(scope="module", autouse=True)
def _kamailio_mode() -> None:
    ensure_mode("kamailio")


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_request_gets_an_error_and_kamailio_keeps_serving(case: str) -> None:
    build, allowed = CASES[case]
    with UdpSip(GATEWAY, SIP_PORT, bind="127.0.0.62") as client:
        answer = client.send(build(client), timeout=2)
    status = answer.status if answer else None
    assert status in allowed, (case, status, answer.text[:300] if answer else None)
    # A legitimate client is still served right after.
    run_client({"1002": DN_PASSWORDS["1002"]}, "register")
    wait_for("1002 bound after the malformed request", lambda: forwarded_bindings("1002"), timeout=5)
    run_client({"1002": DN_PASSWORDS["1002"]}, "unregister")
