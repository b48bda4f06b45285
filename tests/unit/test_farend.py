"""The lab's far-end SIP UA (tests/lab/farend.py): two instances on 127.0.0.1 calling each other directly."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from lab import farend
from lab.farend import FarEnd, FarEndCall, SipMessage, parse_sdp

HOST = "127.0.0.1"
TONE = 3000.0  # a 440 Hz tone at -12 dBFS has a mean |sample| of about 5090; silence 0


def until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def uri(fe: FarEnd, user: str = "1002") -> str:
    return f"sip:{user}@{HOST}:{fe.sip_port}"


def sent(fe: FarEnd, prefix: str) -> list[str]:
    return [line for _, direction, line in fe.log if direction == "out" and line.startswith(prefix)]


def received(fe: FarEnd, prefix: str) -> list[str]:
    return [line for _, direction, line in fe.log if direction == "in" and line.startswith(prefix)]


@pytest.fixture
def pair() -> Iterator[tuple[FarEnd, FarEnd]]:
    with FarEnd(HOST) as caller, FarEnd(HOST) as callee:
        yield caller, callee


@pytest.fixture
def raw() -> Iterator[Callable[[], socket.socket]]:
    """Plain UDP sockets on 127.0.0.1, standing in for proxies and peers."""
    socks: list[socket.socket] = []

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        sock.settimeout(3)
        socks.append(sock)
        return sock

    yield make
    for sock in socks:
        sock.close()


def answered_call(caller: FarEnd, callee: FarEnd) -> tuple[FarEndCall, FarEndCall]:
    callee.serve(answer_after=0.05)
    call = caller.invite(uri(callee), proxy=callee.address, from_user="5551000")
    assert call.wait_answered(5)
    incoming = callee.wait_incoming(2)
    assert until(lambda: incoming.rtp_received > 5 and call.rtp_received > 5)
    return call, incoming


def reply(request: SipMessage, status: str, *extra: str, body: bytes = b"") -> bytes:
    """A response built by hand, copying Via/From/To/Call-ID/CSeq (and tagging To if it has no tag)."""
    to = request.get("to") or ""
    lines = [f"SIP/2.0 {status}", *(f"Via: {v}" for v in request.get_all("via")), f"From: {request.get('from')}"]
    lines += [f"To: {to}" if farend._param(to, "tag") else f"To: {to};tag=raw1", f"Call-ID: {request.call_id}"]
    lines += [f"CSeq: {request.get('cseq')}", *extra, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def recv(sock: socket.socket) -> SipMessage:
    return SipMessage.parse(sock.recv(65535))


# ---- pure parts ---------------------------------------------------------------------------------


def test_g711_matches_the_reference_codec() -> None:
    samples = [-32768, -31611, -1000, -3, -1, 0, 1, 5, 1000, 8000, 32767]
    assert bytes(map(farend.ulaw_encode, samples)).hex() == "00004e7e7efffffecea080"
    assert bytes(map(farend.alaw_encode, samples)).hex() == "2a2b7a5555d5d5d5fa8aaa"
    for encode, decode in ((farend.ulaw_encode, farend.ulaw_decode), (farend.alaw_encode, farend.alaw_decode)):
        for sample in range(-32000, 32000, 37):
            assert abs(decode(encode(sample)) - sample) <= max(16, abs(sample) // 15)


def test_parses_compact_forms_folded_and_comma_separated_headers() -> None:
    data = (
        b"INVITE sip:1002@127.0.0.1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKtop, SIP/2.0/UDP 127.0.0.8;branch=z9hG4bKmid\r\n"
        b"VIA: SIP/2.0/UDP 127.0.0.7;branch=z9hG4bKlow\r\n"
        b'f: "Doe, John" <sip:5551000@127.0.0.9>;tag=abc\r\n'
        b"t: <sip:1002@127.0.0.1>\r\ni: xyz@127.0.0.9\r\nCSEQ: 7 INVITE\r\n"
        b'Record-Route: <sip:127.0.0.5;lr>, "x, y" <sip:127.0.0.6;lr>\r\n'
        b"Subject: folded\r\n  line\r\nm: <sip:caller@127.0.0.9:5062>\r\nl: 4\r\n\r\nv=0\r\ntrailing"
    )
    message = SipMessage.parse(data)
    assert message.is_request and message.method == "INVITE" and message.uri == "sip:1002@127.0.0.1"
    assert [farend._param(v, "branch") for v in message.get_all("Via")] == ["z9hG4bKtop", "z9hG4bKmid", "z9hG4bKlow"]
    assert message.branch == "z9hG4bKtop"
    assert message.get("From") == '"Doe, John" <sip:5551000@127.0.0.9>;tag=abc'
    assert message.get("i") == "xyz@127.0.0.9" and message.call_id == "xyz@127.0.0.9"
    assert message.cseq == (7, "INVITE")
    assert message.get_all("record-route") == ["<sip:127.0.0.5;lr>", '"x, y" <sip:127.0.0.6;lr>']
    assert message.get("subject") == "folded line"
    assert farend._uri_address(message.get("contact") or "") == ("127.0.0.9", 5062)
    assert message.body == b"v=0\r"


def test_sdp_direction_and_codecs() -> None:
    body = (
        b"v=0\r\no=x 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\na=sendonly\r\n"
        b"m=audio 4000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n"
        b"m=video 4002 RTP/AVP 97\r\na=recvonly\r\n"
    )
    sdp = parse_sdp(body)
    assert sdp is not None
    assert (sdp.address, sdp.port, sdp.direction) == ("127.0.0.9", 4000, "sendonly")
    assert sdp.codecs == {8: "PCMA", 0: "PCMU", 96: "telephone-event"}
    assert sdp.pt_for("telephone-event") == 96
    assert parse_sdp(b"v=0\r\n") is None


def test_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        FarEnd("0.0.0.0")
    with FarEnd(HOST) as fe:
        with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
            fe.invite("sip:1002@192.0.2.1:5060")
        with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
            fe.invite(uri(fe), proxy=("localhost", 5060))
        assert not sent(fe, "INVITE")


# ---- calls between two FarEnds ------------------------------------------------------------------


def test_answered_call_carries_a_tone_both_ways_and_the_caller_hangs_up(pair: tuple[FarEnd, FarEnd]) -> None:
    caller, callee = pair
    callee.serve(answer_after=0.2)
    call = caller.invite(uri(callee), proxy=callee.address, from_user="5551000")
    assert call.wait_answered(5)
    assert call.ringing_at is not None and call.answered_at is not None
    assert call.answered_at - call.ringing_at >= 0.15
    incoming = callee.wait_incoming(2)
    assert (incoming.request_uri, incoming.from_user, incoming.to_user) == (uri(callee), "5551000", "1002")
    assert incoming.headers["call-id"] == call.call_id and incoming.headers["cseq"] == "1 INVITE"
    assert incoming.headers["contact"] == f"<sip:farend@{HOST}:{caller.sip_port}>"
    time.sleep(1.5)
    for side in (call, incoming):
        assert side.rtp_received > 40 and side.rtp_sent > 40
        assert side.audio_energy() > TONE
        assert side.rtp_first_received_at is not None
    assert call.rtp_remote_source == (HOST, incoming._media.port)
    assert len(sent(caller, "INVITE")) == 1  # the 100 stopped timer A
    assert call.bye() == 200
    assert incoming.wait_ended(2) and incoming.ended_by == "remote-bye"
    assert call.ended_by == "local-bye" and not call.wait_ended(0)
    stopped = incoming.rtp_received
    time.sleep(0.2)
    assert incoming.rtp_received == stopped


def test_silence_is_told_from_a_tone() -> None:
    with FarEnd(HOST, tone_hz=0) as silent, FarEnd(HOST) as callee:
        call, incoming = answered_call(silent, callee)
        time.sleep(1.2)
        assert incoming.rtp_received > 40 and incoming.audio_energy() < 20
        assert call.audio_energy() > TONE


def test_callee_hangs_up(pair: tuple[FarEnd, FarEnd]) -> None:
    call, incoming = answered_call(*pair)
    assert incoming.bye() == 200
    assert call.wait_ended(2) and call.ended_by == "remote-bye"
    assert received(pair[0], "BYE") and sent(pair[0], "SIP/2.0 200 OK")


def test_busy_is_486_and_acked(pair: tuple[FarEnd, FarEnd]) -> None:
    caller, callee = pair
    callee.serve(behaviour="busy")
    call = caller.invite(uri(callee), proxy=callee.address)
    assert call.wait_final(5) == 486
    assert not call.wait_answered(0) and call.ended_by == "failed"
    incoming = callee.wait_incoming(1)
    assert until(lambda: bool(received(callee, "ACK")))
    assert incoming.final_status == 486 and call.rtp_sent == 0


def test_ringing_call_is_cancelled_with_487(pair: tuple[FarEnd, FarEnd]) -> None:
    caller, callee = pair
    callee.serve(behaviour="ring")
    call = caller.invite(uri(callee), proxy=callee.address)
    incoming = callee.wait_incoming(2)
    assert until(lambda: call.ringing_at is not None)
    assert call.cancel() == 487
    assert incoming.wait_final(2) == 487 and incoming.ended_by == "cancelled"
    assert call.ended_by == "cancelled"
    assert received(caller, "SIP/2.0 200 OK") and received(caller, "SIP/2.0 487")
    assert until(lambda: bool(received(callee, "ACK")))
    cancel = [line for line in callee.log if line[2].startswith("CANCEL")]
    assert cancel and sent(caller, "ACK")


def test_hold_stops_the_held_side_and_unhold_resumes_it(pair: tuple[FarEnd, FarEnd]) -> None:
    call, incoming = answered_call(*pair)
    assert call.hold() == 200
    assert incoming.remote_hold
    time.sleep(0.1)
    held_sent, holder_received, holder_sent = incoming.rtp_sent, call.rtp_received, call.rtp_sent
    time.sleep(0.6)
    assert incoming.rtp_sent == held_sent and call.rtp_received == holder_received  # recvonly: silent
    assert call.rtp_sent > holder_sent + 15  # sendonly: we keep sending (music on hold)
    assert call.unhold() == 200
    assert not incoming.remote_hold
    assert until(lambda: call.rtp_received > holder_received + 15 and incoming.rtp_sent > held_sent + 15)
    assert call._sdp_version == 3  # o= version: offer, hold, unhold


def test_callee_can_hold_too(pair: tuple[FarEnd, FarEnd]) -> None:
    call, incoming = answered_call(*pair)
    assert incoming.hold() == 200 and call.remote_hold
    time.sleep(0.1)
    before = call.rtp_sent
    time.sleep(0.4)
    assert call.rtp_sent == before
    assert incoming.unhold() == 200 and not call.remote_hold
    assert until(lambda: call.rtp_sent > before + 10)


def test_reinvite_glare_491_is_retried_once(pair: tuple[FarEnd, FarEnd]) -> None:
    caller, callee = pair
    call, incoming = answered_call(caller, callee)
    incoming._reinvite_pending = True  # as if its own re-INVITE were in flight
    threading.Timer(0.05, lambda: setattr(incoming, "_reinvite_pending", False)).start()
    assert call.hold() == 200
    assert received(caller, "SIP/2.0 491") and len(sent(caller, "INVITE")) == 3
    assert incoming.remote_hold


def test_dtmf_both_ways(pair: tuple[FarEnd, FarEnd]) -> None:
    call, incoming = answered_call(*pair)
    call.send_dtmf("1234#")
    assert until(lambda: incoming.received_dtmf() == "1234#", 1)
    incoming.send_dtmf("*0D", duration_ms=60)
    assert until(lambda: call.received_dtmf() == "*0D", 1)
    assert call.received_dtmf() == "*0D" and incoming.received_dtmf() == "1234#"  # one digit per event


def test_rfc4733_packets_on_the_wire(raw: Callable[[], socket.socket]) -> None:
    media = farend._Media(HOST, echo=False, tone_hz=440)
    sink = raw()
    media.remote, media.te_pt, media.sending = sink.getsockname(), 101, True
    media.queue_dtmf("5", 100)
    for _ in range(8):  # 5 updates + 3 end packets
        media._tick()
    packets = [sink.recv(100) for _ in range(8)]
    media.stop()
    events = [farend._parse_rtp(p) for p in packets]
    assert all(e is not None and e[0] == 101 for e in events)
    assert len({e[1] for e in events if e}) == 1  # one timestamp for the whole event
    assert [p[1] & 0x80 for p in packets] == [0x80] + [0] * 7  # marker on the first packet only
    assert [p[12] for p in packets] == [5] * 8
    assert [p[13] & 0x80 for p in packets] == [0] * 5 + [0x80] * 3  # E bit on three end packets
    assert [int.from_bytes(p[14:16]) for p in packets] == [160, 320, 480, 640, 800, 800, 800, 800]


def test_digest_auth_as_caller(pair: tuple[FarEnd, FarEnd]) -> None:
    _, callee = pair
    callee.serve(answer_after=0, challenge=("lab", "5551000", "secret"))
    with FarEnd(HOST, auth=("5551000", "secret")) as caller:
        call = caller.invite(uri(callee), proxy=callee.address, from_user="5551000")
        assert call.wait_answered(5)
        incoming = callee.wait_incoming(1)
        assert incoming.headers["cseq"] == "2 INVITE" and incoming.call_id == call.call_id
        assert "qop=auth" in incoming.headers["authorization"]
        assert received(caller, "SIP/2.0 401") and len(sent(caller, "ACK")) == 2  # the 401's and the 200's
    with FarEnd(HOST, auth=("5551000", "wrong")) as caller:
        assert caller.invite(uri(callee), proxy=callee.address).wait_final(5) == 403
    with FarEnd(HOST) as caller:
        assert caller.invite(uri(callee), proxy=callee.address).wait_final(5) == 401


def test_echo_sends_back_what_it_hears() -> None:
    with FarEnd(HOST, echo=True) as echo, FarEnd(HOST) as tone, FarEnd(HOST, tone_hz=0) as silent:
        loud, _ = answered_call(tone, echo)
        quiet, _ = answered_call(silent, echo)
        time.sleep(1.2)
        assert loud.rtp_received > 40 and quiet.rtp_received > 40
        assert abs(loud.audio_energy() - 5090) < 300
        assert quiet.audio_energy() < 20


def test_invite_is_retransmitted_then_times_out(
    monkeypatch: pytest.MonkeyPatch, raw: Callable[[], socket.socket]
) -> None:
    monkeypatch.setattr(farend, "T1", 0.02)  # timer A 20 ms, doubling; 408 after 64*T1 = 1.28 s
    dead = raw()
    with FarEnd(HOST) as caller:
        call = caller.invite("sip:1002@127.0.0.1", proxy=dead.getsockname())
        assert call.wait_final(5) == 408
        copies = []
        dead.settimeout(0.1)
        while True:
            try:
                copies.append(dead.recv(65535))
            except TimeoutError:
                break
        assert len(copies) >= 5 and len(set(copies)) == 1
        assert not sent(caller, "ACK")


def test_ack_and_bye_follow_the_reversed_record_route(raw: Callable[[], socket.socket]) -> None:
    proxy, first_hop, second_hop, peer = raw(), raw(), raw(), raw()
    first, second, port = first_hop.getsockname()[1], second_hop.getsockname()[1], peer.getsockname()[1]
    contact = f"<sip:peer@{HOST}:{port}>"
    with FarEnd(HOST) as caller:
        call = caller.invite(f"sip:1002@{HOST}", proxy=proxy.getsockname(), from_user="5551000")
        invite = recv(proxy)
        sdp = f"v=0\r\no=p 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
        record_route = f"Record-Route: <sip:{HOST}:{second};lr>, <sip:{HOST}:{first};lr>"
        ok = reply(invite, "200 OK", record_route, f"Contact: {contact}", "c: application/sdp", body=sdp.encode())
        proxy.sendto(ok, caller.address)
        assert call.wait_answered(2)
        ack = recv(first_hop)  # the first entry of the reversed route set, not the proxy the INVITE went to
        assert ack.first_line == f"ACK sip:peer@{HOST}:{port} SIP/2.0"
        assert ack.get_all("route") == [f"<sip:{HOST}:{first};lr>", f"<sip:{HOST}:{second};lr>"]
        assert ack.cseq == (1, "ACK") and ack.branch != invite.branch
        assert farend._param(ack.get("to") or "", "tag") == "raw1"
        bye_tx = threading.Thread(target=call.bye)
        bye_tx.start()
        bye = recv(first_hop)
        assert bye.method == "BYE" and bye.cseq == (2, "BYE") and bye.get_all("route") == ack.get_all("route")
        first_hop.sendto(reply(bye, "200 OK"), caller.address)
        bye_tx.join(3)
        assert received(caller, "SIP/2.0 200 OK")


def test_callee_answers_a_hand_made_invite(pair: tuple[FarEnd, FarEnd], raw: Callable[[], socket.socket]) -> None:
    _, callee = pair
    callee.serve(answer_after=0)
    peer, rtp = raw(), raw()
    port, rtp_port = peer.getsockname()[1], rtp.getsockname()[1]
    sdp = (
        f"v=0\r\no=p 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n"
    ).encode()
    invite = (
        f"INVITE sip:1002@{HOST}:{callee.sip_port} SIP/2.0\r\n"
        f"v: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bKraw1, SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKorig\r\n"
        f"f: <sip:5551000@{HOST}>;tag=rawtag\r\nt: <sip:1002@{HOST}>\r\ni: raw-call-1\r\nCSeq: 10 INVITE\r\n"
        f"Record-Route: <sip:{HOST}:{port};lr>\r\nm: <sip:raw@{HOST}:{port}>\r\nc: application/sdp\r\n"
        f"l: {len(sdp)}\r\n\r\n"
    ).encode() + sdp
    peer.sendto(invite, callee.address)
    trying, ringing, ok = recv(peer), recv(peer), recv(peer)
    assert [trying.status, ringing.status, ok.status] == [100, 180, 200]
    for response in (ringing, ok):
        assert [farend._param(v, "branch") for v in response.get_all("via")] == ["z9hG4bKraw1", "z9hG4bKorig"]
        assert response.get_all("record-route") == [f"<sip:{HOST}:{port};lr>"]
        assert response.get("contact") == callee.contact and response.cseq == (10, "INVITE")
        assert response.call_id == "raw-call-1" and response.get("from") == f"<sip:5551000@{HOST}>;tag=rawtag"
    tag = farend._param(ok.get("to") or "", "tag")
    assert tag and tag == farend._param(ringing.get("to") or "", "tag")
    answer = parse_sdp(ok.body)
    assert answer is not None and answer.codecs == {0: "PCMU", 96: "telephone-event"}  # PCMU first, offerer's pt
    peer.sendto(invite, callee.address)  # a retransmission gets the same 200 again
    assert recv(peer).encode() == ok.encode()
    ack = (
        f"ACK sip:farend@{HOST}:{callee.sip_port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bKraw2\r\n"
        f"From: <sip:5551000@{HOST}>;tag=rawtag\r\nTo: {ok.get('to')}\r\nCall-ID: raw-call-1\r\nCSeq: 10 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    peer.sendto(ack, callee.address)
    incoming = callee.wait_incoming(1)
    assert rtp.recv(2048)[1] & 0x7F == 0  # PCMU to the offer's c=/m= address
    options = ack.replace(b"ACK sip", b"OPTIONS sip").replace(b"10 ACK", b"11 OPTIONS").replace(b"raw2", b"raw3")
    peer.sendto(options, callee.address)
    assert recv(peer).status == 200
    bye_tx = threading.Thread(target=incoming.bye)
    bye_tx.start()
    bye = recv(peer)  # the Record-Route entry, with the dialog's Contact as Request-URI
    assert bye.first_line == f"BYE sip:raw@{HOST}:{port} SIP/2.0" and bye.get_all("route") == [
        f"<sip:{HOST}:{port};lr>"
    ]
    assert bye.get("from") == f"<sip:1002@{HOST}>;tag={tag}" and bye.get("to") == f"<sip:5551000@{HOST}>;tag=rawtag"
    peer.sendto(reply(bye, "200 OK"), callee.address)
    bye_tx.join(3)
    assert incoming.ended_by == "local-bye"


def test_offer_outside_loopback_is_refused(pair: tuple[FarEnd, FarEnd], raw: Callable[[], socket.socket]) -> None:
    _, callee = pair
    callee.serve()
    peer = raw()
    sdp = b"v=0\r\no=p 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    invite = (
        f"INVITE sip:1002@{HOST} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{peer.getsockname()[1]};branch=z9hG4bKx\r\n"
        f"From: <sip:a@{HOST}>;tag=t\r\nTo: <sip:1002@{HOST}>\r\nCall-ID: refused\r\nCSeq: 1 INVITE\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    ).encode() + sdp
    peer.sendto(invite, callee.address)
    assert recv(peer).status == 488
    with pytest.raises(TimeoutError):
        callee.wait_incoming(0.1)
