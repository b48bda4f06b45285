"""The lab's raw SIP client over UDP, against a responder on a loopback socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from lab.rawsip import UdpSip

REQUEST = (
    "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-2\r\n"
    "Call-ID: rawsip-test\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Content-Length: 0\r\n\r\n"
)


def _response(status: str, cseq: str) -> bytes:
    return (f"SIP/2.0 {status}\r\nCall-ID: rawsip-test\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.fixture
def responder() -> Iterator[tuple[str, int]]:
    """Answers each request first with the late 401 of an earlier REGISTER (CSeq 1), then 200 OK."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        try:
            _, peer = server.recvfrom(65535)
        except OSError:
            return
        server.sendto(_response("401 Unauthorized", "1 REGISTER"), peer)
        server.sendto(_response("200 OK", "2  REGISTER"), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()
    thread.join(timeout=5)
    server.close()


def test_a_late_answer_to_an_earlier_request_is_not_taken_for_this_ones(responder: tuple[str, int]) -> None:
    with UdpSip(*responder) as udp:
        answer = udp.send(REQUEST, timeout=3)
    assert answer is not None
    assert answer.status == 200


def test_a_single_datagram_takes_the_first_final_answer(responder: tuple[str, int]) -> None:
    with UdpSip(*responder) as udp:
        answer = udp.send(REQUEST, timeout=3, retransmit=False)
    assert answer is not None
    assert answer.status == 401
