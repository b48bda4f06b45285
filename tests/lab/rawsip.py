"""A raw SIP client for tests that need to set From/To/Authorization freely.

Speaks SIP over wss (through nginx, as a browser would) or over UDP (to Kamailio's SIP
listener). Lab loopback addresses only.
"""

from __future__ import annotations

import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.http11 import Response as HttpResponse
from websockets.protocol import State
from websockets.typing import Origin, Subprotocol
from websockets.uri import parse_uri

from lab import assert_loopback
from lab.farend import digest_authorization as farend_digest

_STATUS = re.compile(r"^(?:SIP/2\.0|HTTP/1\.[01]) (\d{3}) ([^\r\n]*)")


@dataclass
class Response:
    status: int
    reason: str
    text: str

    def header(self, name: str) -> str | None:
        for line in self.text.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def parse_response(text: str) -> Response:
    match = _STATUS.match(text)
    if not match:
        raise AssertionError(f"not a SIP response: {text[:200]!r}")
    return Response(int(match.group(1)), match.group(2), text)


def digest_authorization(
    challenge: str, username: str, password: str, uri: str, *, method: str = "REGISTER", header: str = "Authorization"
) -> str:
    """An Authorization header answering a WWW-Authenticate challenge (MD5, qop=auth or none):
    the lab's one digest implementation, farend.py's, with the header name in front."""
    return f"{header}: " + farend_digest(challenge, username, password, method, uri)


@dataclass
class Register:
    """One REGISTER, with every header under the test's control."""

    domain: str
    from_user: str
    to_user: str
    contact: str
    via_host: str
    transport: str = "WSS"
    expires: int = 600
    call_id: str = ""
    cseq: int = 1
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.call_id = self.call_id or secrets.token_hex(10)

    @property
    def uri(self) -> str:
        return f"sip:{self.domain}"

    def render(self) -> str:
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"REGISTER {self.uri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} {self.via_host};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.from_user}@{self.domain}>;tag={secrets.token_hex(5)}",
            f"To: <sip:{self.to_user}@{self.domain}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <{self.contact}>;expires={self.expires}",
            f"Expires: {self.expires}",
            "Supported: path, outbound",
            *self.extra,
            "Content-Length: 0",
        ]
        return "\r\n".join(lines) + "\r\n\r\n"


class WsConnection:
    """A WebSocket client connection driven from one thread only.

    websockets' threaded client reads an SSLSocket in a background thread while the caller
    writes to it: OpenSSL objects are not safe for that, and it crashed the test process with
    a segmentation fault (and timed handshakes out) under the hostile corpus. Here websockets'
    Sans-I/O protocol does the framing and this thread alone does all socket I/O.
    """

    def __init__(self, url: str, origin: str | None, sock: socket.socket, context: ssl.SSLContext) -> None:
        uri = parse_uri(url)
        self.protocol = ClientProtocol(
            uri,
            origin=Origin(origin) if origin else None,
            subprotocols=[Subprotocol("sip")],
        )
        self.sock = context.wrap_socket(sock, server_hostname=uri.host)
        self._messages: list[str | bytes] = []
        self._fragments: list[Frame] = []
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        deadline = time.monotonic() + 15
        while self.protocol.state is State.CONNECTING:
            self._read(deadline)  # raises the handshake's error (403 for a foreign Origin)

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def _read(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no WebSocket data in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError) as timeout:
            raise TimeoutError("no WebSocket data in time") from timeout
        except OSError:
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._collect(event)
            elif isinstance(event, HttpResponse) and self.protocol.handshake_exc is not None:
                raise self.protocol.handshake_exc
        self._flush()  # pongs and close replies
        if not data and self.protocol.state is State.CONNECTING:
            raise InvalidHandshake("connection closed during the WebSocket handshake")

    def _collect(self, frame: Frame) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return
        self._fragments.append(frame)
        if not frame.fin:
            return
        payload = b"".join(bytes(f.data) for f in self._fragments)
        text = self._fragments[0].opcode is Opcode.TEXT
        self._fragments = []
        self._messages.append(payload.decode(errors="replace") if text else payload)

    def send(self, message: str | bytes) -> None:
        """A text frame for str, a binary frame for bytes; ConnectionClosed once closed."""
        if self.protocol.state is not State.OPEN:
            raise self.protocol.close_exc
        if isinstance(message, str):
            self.protocol.send_text(message.encode())
        else:
            self.protocol.send_binary(message)
        try:
            self._flush()
        except OSError:
            self.protocol.receive_eof()
            raise self.protocol.close_exc from None

    def recv(self, timeout: float = 5) -> str | bytes:
        """The next message; TimeoutError if none comes, ConnectionClosed once closed."""
        deadline = time.monotonic() + timeout
        while not self._messages:
            if self.closed:
                raise self.protocol.close_exc
            self._read(deadline)
        return self._messages.pop(0)

    @property
    def closed(self) -> bool:
        return self.protocol.state is State.CLOSED

    def close(self) -> None:
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close()
                self._flush()
                deadline = time.monotonic() + 2
                while not self.closed:
                    self._read(deadline)
        except (OSError, TimeoutError, ConnectionClosed):
            pass
        finally:
            self.sock.close()


class WsSip:
    """SIP over a real wss connection (through nginx, with the sip subprotocol).

    bind: a loopback source address for the TCP connection (a distinct "client address" for
    nginx's X-Real-IP, as a second agent or an attacker elsewhere would have).
    """

    def __init__(self, url: str, origin: str | None = None, bind: str | None = None) -> None:
        host, _, port = url.split("//", 1)[1].split("/", 1)[0].partition(":")
        assert_loopback(host)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the lab's self-signed certificate
        if bind:
            assert_loopback(bind)
        sock = socket.create_connection(
            (host, int(port or 443)), timeout=15, source_address=(bind, 0) if bind else None
        )
        try:
            self.ws = WsConnection(url, origin, sock, context)
        except BaseException:
            sock.close()
            raise

    def send(self, message: str | bytes, timeout: float = 5) -> Response:
        """Send a request (bytes go as a binary frame); return the first final (>= 200) response."""
        self.ws.send(message)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no final response")
            raw = self.ws.recv(timeout=remaining)
            text = raw if isinstance(raw, str) else raw.decode(errors="replace")
            response = parse_response(text)
            if response.status >= 200:
                return response

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> WsSip:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def register_with_digest(
    client: WsSip | UdpSip, reg: Register, username: str, password: str, timeout: float = 5
) -> Response | None:
    """A REGISTER as a client sends it: once, and again with credentials if challenged."""
    answer = client.send(reg.render(), timeout=timeout)
    if answer is None or answer.status not in (401, 407):
        return answer
    proxy = answer.status == 407
    challenge = answer.header("Proxy-Authenticate" if proxy else "WWW-Authenticate") or ""
    header = "Proxy-Authorization" if proxy else "Authorization"
    reg.cseq += 1
    reg.extra = (digest_authorization(challenge, username, password, reg.uri, header=header),)
    return client.send(reg.render(), timeout=timeout)


def _normal(value: str | None) -> str | None:
    return " ".join(value.split()) if value else None


def _cseq_of(message: str) -> str | None:
    """The CSeq header of a request as text, normalised (None when it has none: hostile rows)."""
    for line in message.split("\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() == "cseq":
            return _normal(value)
    return None


class UdpSip:
    """SIP over UDP to a loopback listener (Kamailio's SIP port)."""

    def __init__(self, host: str, port: int, bind: str = "127.0.0.1") -> None:
        assert_loopback(host)
        self.peer = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.local = self.sock.getsockname()

    def send(self, message: str | bytes, timeout: float = 3, retransmit: bool = True) -> Response | None:
        """Send a request; return the first final response, or None when none came in time.

        retransmit: resend as a UDP user agent does (RFC 3261 timer E: T1 = 0.5 s, doubling up
        to T2 = 4 s) until a final response or the timeout. UDP may drop a datagram, as it does
        when a flood fills the listener's receive buffer; a real client would not give up there.
        False sends exactly one datagram (a hostile message as such).

        With retransmit, only a response with the request's CSeq counts: the late answer to a
        retransmission of an earlier request (a 401 to a REGISTER resent while the gateway was
        busy) is not this one's. Without it, any final response counts (a hostile message may
        carry a CSeq that no answer repeats).
        """
        data = message.encode() if isinstance(message, str) else message
        cseq = _cseq_of(data.decode(errors="replace")) if retransmit else None
        self.sock.sendto(data, self.peer)
        sent = time.monotonic()
        deadline = sent + timeout
        interval = 0.5
        resend_at = sent + interval if retransmit else deadline
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now >= resend_at:
                self.sock.sendto(data, self.peer)
                interval = min(2 * interval, 4.0)
                resend_at = now + interval
            self.sock.settimeout(min(deadline, resend_at) - now)
            try:
                raw, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            response = parse_response(raw.decode(errors="replace"))
            if response.status >= 200 and (cseq is None or _normal(response.header("CSeq")) == cseq):
                return response

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpSip:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
