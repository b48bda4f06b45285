"""A small SIP user agent over UDP with its own RTP: the Genesys side of a call in integration tests.

Caller: ``FarEnd(...).invite(...)``; callee: ``FarEnd(...).serve(...)`` then ``wait_incoming()``. Standard
library only, and it refuses to send anywhere outside 127.0.0.0/8. Times are ``time.monotonic()`` values.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
import re
import secrets
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

T1 = 0.5  # RFC 3261 timers in seconds (tests may shrink T1; every timeout is 64*T1)
T2 = 4.0
Address = tuple[str, int]
Behaviour = Literal["answer", "busy", "ring"]

REASONS = {
    100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK", 401: "Unauthorized", 403: "Forbidden",
    407: "Proxy Authentication Required", 408: "Request Timeout", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 501: "Not Implemented",
}  # fmt: skip
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
            "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}  # fmt: skip
_SPLIT = frozenset({"via", "route", "record-route", "contact"})
_PRETTY = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_DTMF = "0123456789*#ABCD"
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def check_loopback(host: str) -> None:
    """Raise ValueError unless host is an IPv4 address in 127.0.0.0/8."""
    try:
        ok = ipaddress.ip_address(host) in _LOOPBACK
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"farend only talks to 127.0.0.0/8, refused {host!r}")


def _token(n: int = 8) -> str:
    return secrets.token_hex(n)


# ---- SIP messages -----------------------------------------------------------------------------


def _split_commas(value: str) -> list[str]:
    """Split a header value at commas outside quotes and <...>."""
    parts, start, quoted, angle = [], 0, False, False
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "<>":
            angle = ch == "<"
        elif ch == "," and not quoted and not angle:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def _param(value: str, name: str) -> str | None:
    """A ;name=value parameter of a header value (after its <URI>, if any)."""
    tail = value[value.rfind(">") + 1 :]
    match = re.search(rf";\s*{name}\s*=\s*([^;,\s]+)", tail, re.IGNORECASE)
    return match.group(1) if match else None


def _uri(value: str) -> str:
    """The URI in a name-addr (<...>) or addr-spec header value."""
    match = re.search(r"<([^>]*)>", value)
    return match.group(1) if match else value.split(";", 1)[0].strip()


def _uri_user(uri: str) -> str:
    rest = re.sub(r"^sips?:", "", _uri(uri), flags=re.IGNORECASE)
    return rest.split("@", 1)[0] if "@" in rest else ""


def _uri_address(uri: str) -> Address:
    rest = re.sub(r"^sips?:", "", _uri(uri), flags=re.IGNORECASE)
    host, _, port = rest.rsplit("@", 1)[-1].split(";", 1)[0].split("?", 1)[0].partition(":")
    return host, int(port or 5060)


def _is_loose(route: str) -> bool:
    return re.search(r";lr(?:[;=>]|$)", route, re.IGNORECASE) is not None


@dataclass
class SipMessage:
    """A SIP message; header names are kept lower-case in their long form, one value per entry."""

    first_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, _, body = data.partition(b"\n\n")
        lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
        first = lines[0].strip()
        if not re.match(r"^(SIP/2\.0 \d{3}|[A-Za-z]+ \S+ SIP/2\.0$)", first):
            raise ValueError(f"not a SIP message: {first[:80]!r}")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded continuation line
                headers[-1] = (headers[-1][0], f"{headers[-1][1]} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            if colon:
                key = _COMPACT.get(name.strip().lower(), name.strip().lower())
                headers += [(key, v) for v in (_split_commas(value) if key in _SPLIT else [value.strip()])]
        message = cls(first, headers, body)
        length = message.get("content-length")
        if length is not None and length.strip().isdigit():
            message.body = body[: int(length)]
        return message

    def get(self, name: str) -> str | None:
        key = _COMPACT.get(name.lower(), name.lower())
        return next((v for k, v in self.headers if k == key), None)

    def get_all(self, name: str) -> list[str]:
        key = _COMPACT.get(name.lower(), name.lower())
        return [v for k, v in self.headers if k == key]

    def header_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self.headers:
            out[key] = f"{out[key]}, {value}" if key in out else value
        return out

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/2.0")

    @property
    def status(self) -> int:
        return 0 if self.is_request else int(self.first_line.split()[1])

    @property
    def uri(self) -> str:
        return self.first_line.split()[1] if self.is_request else ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.get("cseq") or "0 ?").partition(" ")
        return int(number), method.strip().upper()

    @property
    def method(self) -> str:
        """The request's method, or for a response the method in its CSeq."""
        return self.first_line.split()[0].upper() if self.is_request else self.cseq[1]

    @property
    def branch(self) -> str:
        return _param(self.get("via") or "", "branch") or ""

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    def encode(self) -> bytes:
        lines = [self.first_line]
        for key, value in self.headers:
            if key != "content-length":
                pretty = _PRETTY.get(key) or "-".join(p.capitalize() for p in key.split("-"))
                lines.append(f"{pretty}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


# ---- digest authentication (MD5, qop=auth) ---------------------------------------------------------


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_params(value: str) -> dict[str, str]:
    found = re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', value)
    return {key.lower(): quoted or token for key, quoted, token in found}


def _digest(user: str, realm: str, password: str, method: str, uri: str, *, params: dict[str, str]) -> str:
    ha1, ha2 = _md5(f"{user}:{realm}:{password}"), _md5(f"{method}:{uri}")
    if params.get("qop"):
        return _md5(f"{ha1}:{params['nonce']}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}")
    return _md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")


def digest_authorization(challenge: str, user: str, password: str, method: str, uri: str) -> str:
    """The (Proxy-)Authorization value answering a (Proxy-|WWW-)Authenticate challenge."""
    params = _digest_params(challenge)
    realm = params.get("realm", "")
    answer = {"nonce": params.get("nonce", "")}
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        answer |= {"qop": "auth", "nc": "00000001", "cnonce": _token(8)}
    response = _digest(user, realm, password, method, uri, params=answer)
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{answer["nonce"]}"', f'uri="{uri}"',
             f'response="{response}"', "algorithm=MD5"]  # fmt: skip
    if "opaque" in params:
        parts.append(f'opaque="{params["opaque"]}"')
    if "qop" in answer:
        parts += ["qop=auth", f"nc={answer['nc']}", f'cnonce="{answer["cnonce"]}"']
    return "Digest " + ", ".join(parts)


# ---- SDP ------------------------------------------------------------------------------------------


@dataclass
class Sdp:
    """The first audio stream of an SDP body."""

    address: str
    port: int
    codecs: dict[int, str]  # payload type -> encoding name, in m= order
    direction: str

    def pt_for(self, name: str) -> int | None:
        return next((pt for pt, n in self.codecs.items() if n.lower() == name.lower()), None)


def parse_sdp(body: bytes) -> Sdp | None:
    session: dict[str, str] = {"dir": "sendrecv"}
    media: dict[str, str] = {}
    names: dict[int, str] = {0: "PCMU", 8: "PCMA"}
    order: list[int] = []
    section = "session"
    for line in body.decode("utf-8", "replace").splitlines():
        kind, _, value = line.strip().partition("=")
        target = session if section == "session" else media
        if kind == "m":
            parts = value.split()
            section = "audio" if parts[:1] == ["audio"] and "port" not in media else "other"
            if section == "audio" and len(parts) > 1:
                media["port"] = parts[1]
                order = [int(p) for p in parts[3:] if p.isdigit()]
        elif section == "other":
            continue
        elif kind == "c":
            target["addr"] = value.split()[-1].split("/")[0]
        elif kind == "a" and value in _MIRROR:
            target["dir"] = value
        elif kind == "a" and (match := re.match(r"rtpmap:(\d+)\s+([^/\s]+)", value)):
            names[int(match.group(1))] = match.group(2)
    if "port" not in media:
        return None
    address, direction = media.get("addr", session.get("addr", "")), media.get("dir", session["dir"])
    if address == "0.0.0.0" and direction == "sendrecv":  # RFC 2543 hold: "do not send to me"
        direction = "sendonly"
    return Sdp(address, int(media["port"]), {pt: names.get(pt, "") for pt in order}, direction)


def build_sdp(
    address: str, port: int, codecs: list[tuple[int, str]], direction: str, *, session_id: int = 0, version: int = 0
) -> bytes:
    lines = ["v=0", f"o=farend {session_id} {version} IN IP4 {address}", "s=farend", f"c=IN IP4 {address}",
             "t=0 0", f"m=audio {port} RTP/AVP {' '.join(str(pt) for pt, _ in codecs)}"]  # fmt: skip
    for pt, name in codecs:
        lines.append(f"a=rtpmap:{pt} {name}/8000")
        if name == "telephone-event":
            lines.append(f"a=fmtp:{pt} 0-16")
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


# ---- G.711 and RTP --------------------------------------------------------------------------------


_ULAW_SEGMENT_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEGMENT_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def ulaw_encode(sample: int) -> int:
    """16-bit linear to mu-law, as the reference g711.c (14-bit domain)."""
    value, mask = sample >> 2, 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, 8159) + 0x21
    segment = next((i for i, end in enumerate(_ULAW_SEGMENT_END) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    exponent, mantissa = (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if byte & 0x80 else magnitude


def alaw_encode(sample: int) -> int:
    """16-bit linear to A-law, as the reference g711.c (13-bit domain)."""
    value, mask = sample >> 3, 0xD5
    if value < 0:
        value, mask = -value - 1, 0x55
    segment = next((i for i, end in enumerate(_ALAW_SEGMENT_END) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (1 if segment < 2 else segment)) & 0x0F)) ^ mask


def alaw_decode(byte: int) -> int:
    byte ^= 0x55
    magnitude, segment = (byte & 0x0F) << 4, (byte & 0x70) >> 4
    magnitude += 8 if segment == 0 else 0x108
    if segment > 1:
        magnitude <<= segment - 1
    return magnitude if byte & 0x80 else -magnitude


_ENCODERS: dict[str, Callable[[int], int]] = {"PCMU": ulaw_encode, "PCMA": alaw_encode}
_DECODERS = {"PCMU": [ulaw_decode(b) for b in range(256)], "PCMA": [alaw_decode(b) for b in range(256)]}


@functools.cache
def _tone_frames(hz: float, codec: str) -> list[bytes]:
    """One second of a sine at -12 dBFS as 50 encoded 20 ms frames."""
    encode = _ENCODERS[codec]
    data = bytes(encode(round(8000 * math.sin(2 * math.pi * hz * n / 8000))) for n in range(8000))
    return [data[i : i + 160] for i in range(0, 8000, 160)]


def _parse_rtp(data: bytes) -> tuple[int, int, int, bytes] | None:
    """(payload type, timestamp, SSRC, payload) of an RTP packet."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    payload = data[offset:]
    if data[0] & 0x20 and payload:
        payload = payload[: -payload[-1]]
    timestamp, ssrc = struct.unpack_from("!II", data, 4)
    return data[1] & 0x7F, timestamp, ssrc, payload


@dataclass
class _Event:
    code: int
    steps: int  # 20 ms packets before the end packets
    timestamp: int = 0
    step: int = 0


class _Media:
    """One call's RTP socket and its thread: sends every 20 ms (tone, echo or RFC 4733 events), receives."""

    def __init__(self, bind: str, echo: bool, tone_hz: float) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.port: int = self.sock.getsockname()[1]
        self.echo, self.tone_hz = echo, tone_hz
        self.remote: Address | None = None
        self.pt, self.codec = 0, "PCMU"
        self.te_pt: int | None = None
        self.receive_codecs: dict[int, str] = {0: "PCMU", 8: "PCMA"}
        self.receive_te_pts: set[int] = {101}
        self.sending = False
        self.sent = self.received = 0
        self.first_received_at: float | None = None
        self.source: Address | None = None
        self.dtmf = ""
        self._seq, self._ts, self._ssrc = secrets.randbelow(1 << 16), secrets.randbelow(1 << 32), secrets.randbits(32)
        self._frame = 0
        self._lock = threading.Lock()
        self._recent: deque[tuple[float, int, int]] = deque(maxlen=100)  # (time, sum of |sample|, samples)
        self._echo: deque[list[int]] = deque(maxlen=10)
        self._events: deque[_Event] = deque()
        self._event: _Event | None = None
        self._gap = 0
        self._dtmf_seen: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    def start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name=f"farend-rtp-{self.port}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:  # once this returns, no packet is sent or counted any more
            self._stop.set()
        if self._thread is None:
            self.sock.close()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(2)

    def queue_dtmf(self, digits: str, duration_ms: int) -> None:
        for digit in digits.upper():
            if digit not in _DTMF:
                raise ValueError(f"not a DTMF digit: {digit!r}")
            self._events.append(_Event(_DTMF.index(digit), max(1, duration_ms // 20)))

    def dtmf_idle(self) -> bool:
        return not self._events and self._event is None

    def energy(self) -> float:
        cutoff = time.monotonic() - 1.0
        with self._lock:
            recent = [(total, n) for at, total, n in self._recent if at >= cutoff]
        samples = sum(n for _, n in recent)
        return sum(total for total, _ in recent) / samples if samples else 0.0

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            readable, _, _ = select.select([self.sock], [], [], max(0.0, next_tick - time.monotonic()))
            if readable:
                try:
                    data, source = self.sock.recvfrom(4096)
                except OSError:
                    continue
                self._receive(data, (source[0], source[1]))
            now = time.monotonic()
            if now >= next_tick:
                self._tick()
                next_tick = max(next_tick + 0.02, now - 0.1)
        self.sock.close()

    def _tick(self) -> None:
        if self._event is None and self._gap == 0 and self._events:
            self._event = self._events[0]
            self._event.timestamp = self._ts
            self._events.popleft()
        if self._event is not None:
            self._send_event(self._event)
        else:
            self._gap = max(0, self._gap - 1)
            payload = self._next_audio()
            if payload is not None:
                self._send(self.pt, payload, self._ts, marker=False)
        self._ts = (self._ts + 160) & 0xFFFFFFFF

    def _send_event(self, event: _Event) -> None:
        end = event.step >= event.steps
        duration = min(event.step + 1, event.steps) * 160
        if self.te_pt is not None:
            payload = struct.pack("!BBH", event.code, (0x80 if end else 0) | 10, duration)
            self._send(self.te_pt, payload, event.timestamp, marker=event.step == 0)
        event.step += 1
        if event.step >= event.steps + 3:  # the end packet is sent three times
            self._event, self._gap = None, 3

    def _next_audio(self) -> bytes | None:
        if not self.echo:
            self._frame += 1
            frames = _tone_frames(self.tone_hz, self.codec)
            return frames[self._frame % len(frames)]
        with self._lock:
            samples = self._echo.popleft() if self._echo else None
        encode = _ENCODERS[self.codec]
        return None if samples is None else bytes(encode(s) for s in samples)

    def _send(self, pt: int, payload: bytes, timestamp: int, *, marker: bool) -> None:
        if not self.sending or self.remote is None:
            return
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self._seq, timestamp, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        with self._lock:
            if self._stop.is_set():
                return
            try:
                self.sock.sendto(header + payload, self.remote)
            except OSError:
                return
            self.sent += 1

    def _receive(self, data: bytes, source: Address) -> None:
        parsed = _parse_rtp(data)
        if parsed is None:
            return
        pt, timestamp, ssrc, payload = parsed
        if pt in self.receive_te_pts:
            if len(payload) >= 4 and payload[0] < len(_DTMF) and (ssrc, timestamp) not in self._dtmf_seen:  # new event
                self._dtmf_seen.add((ssrc, timestamp))
                self.dtmf += _DTMF[payload[0]]
            return
        codec = self.receive_codecs.get(pt)
        if codec is None or not payload:
            return
        now, table = time.monotonic(), _DECODERS[codec]
        samples = [table[b] for b in payload]
        with self._lock:
            if self._stop.is_set():
                return
            self.received += 1
            self.first_received_at = self.first_received_at or now
            self.source = source
            self._recent.append((now, sum(map(abs, samples)), len(samples)))
            if self.echo:
                self._echo.append(samples)


# ---- transactions and calls -----------------------------------------------------------------------


class _Retransmitter:
    """Resends a datagram at T1, 2*T1, ... (capped at cap) until stopped; on_timeout after 64*T1."""

    def __init__(
        self, fe: FarEnd, data: bytes, dest: Address, cap: float | None, on_timeout: Callable[[], None] | None
    ) -> None:
        self._fe, self._data, self._dest, self._cap, self._on_timeout = fe, data, dest, cap, on_timeout
        self.interval, self.deadline, self.active = T1, time.monotonic() + 64 * T1, True
        fe._schedule(self.interval, self._fire)

    def stop(self) -> None:
        self.active = False

    def _fire(self) -> None:
        if not self.active:
            return
        now = time.monotonic()
        if now >= self.deadline:
            self.active = False
            if self._on_timeout is not None:
                self._on_timeout()
            return
        self._fe._send(self._data, self._dest)
        self.interval = self.interval * 2 if self._cap is None else min(self.interval * 2, self._cap)
        self._fe._schedule(min(self.interval, self.deadline - now), self._fire)


@dataclass
class _ClientTx:
    request: SipMessage
    dest: Address
    call: FarEndCall | None
    retx: _Retransmitter | None = None
    provisional: bool = False
    final: SipMessage | None = None
    timed_out: bool = False
    ack: tuple[bytes, Address] | None = None  # resent when the final response is retransmitted


@dataclass
class _Serve:
    answer_after: float
    behaviour: Behaviour
    challenge: tuple[str, str, str] | None


class FarEndCall:
    """One call (dialog) of a FarEnd, as caller (role "uac") or callee (role "uas")."""

    def __init__(self, fe: FarEnd, role: Literal["uac", "uas"], call_id: str) -> None:
        self._fe, self.role, self.call_id = fe, role, call_id
        self.local_tag, self.remote_tag = _token(4), ""
        self.request_uri = self.from_user = self.to_user = ""
        self.headers: dict[str, str] = {}  # of the initial INVITE (lower-case long names)
        self.invite: SipMessage | None = None
        self.ringing_at: float | None = None
        self.answered_at: float | None = None
        self.final_status: int | None = None
        self.ended = False
        self.ended_by: str | None = None  # remote-bye, local-bye, cancelled, failed, busy, closed
        self.remote_hold = False
        self.events: list[tuple[float, str]] = []
        self._media = _Media(fe.bind, fe.echo, fe.tone_hz)
        self._local_party = self._remote_party = self._remote_target = ""
        self._route_set: list[str] = []
        self._cseq = 0
        self._session_id, self._sdp_version, self._last_sdp = secrets.randbelow(10**9), 0, b""
        self._local_dir = self._remote_dir = self._pending_dir = "sendrecv"
        self._invite_tx: _ClientTx | None = None
        self._invite_addr: Address = ("", 0)
        self._answer_body = b""
        self._early_sdp: Sdp | None = None
        self._resp_retx: _Retransmitter | None = None
        self._extra: list[tuple[str, str]] = []
        self._auth_tried = self._cancelled = self._reinvite_pending = False

    def __repr__(self) -> str:
        return f"<FarEndCall {self.role} {self.call_id} final={self.final_status} ended_by={self.ended_by}>"

    # -- public API --
    @property
    def rtp_received(self) -> int:
        """Audio RTP packets received (RFC 4733 events not counted)."""
        return self._media.received

    @property
    def rtp_sent(self) -> int:
        """RTP packets sent (audio and events)."""
        return self._media.sent

    @property
    def rtp_first_received_at(self) -> float | None:
        return self._media.first_received_at

    @property
    def rtp_remote_source(self) -> Address | None:
        return self._media.source

    def wait_answered(self, timeout: float = 10.0) -> bool:
        self._fe._wait(lambda: self.final_status is not None, timeout)
        return self.final_status is not None and 200 <= self.final_status < 300

    def wait_final(self, timeout: float = 10.0) -> int:
        """The final status of the initial INVITE (received as caller, sent as callee)."""
        if not self._fe._wait(lambda: self.final_status is not None, timeout) or self.final_status is None:
            raise TimeoutError(f"no final response for {self.call_id} within {timeout}s")
        return self.final_status

    def wait_ended(self, timeout: float = 10.0) -> bool:
        """True once the remote side hung up with a BYE (which was answered 200)."""
        self._fe._wait(lambda: self.ended, timeout)
        return self.ended_by == "remote-bye"

    def cancel(self, timeout: float = 5.0) -> int:
        """CANCEL the ringing INVITE; returns its final status (487, or 200 if the answer won the race)."""
        if self._invite_tx is None:
            raise RuntimeError("only an outgoing call can be cancelled")
        self._fe._wait(
            lambda: self.final_status is not None or bool(self._invite_tx and self._invite_tx.provisional), timeout
        )
        with self._fe._cond:
            tx = self._invite_tx
            if self.final_status is None and not self._cancelled:
                self._cancelled = True
                self._fe._start_tx(
                    self._same_tx_request(tx.request, "CANCEL", tx.request.get("to") or ""), tx.dest, self
                )
        return self.wait_final(timeout)

    def vanish(self) -> None:
        """The far end is gone without a BYE (killed, or its network lost): its RTP stops."""
        self._media.stop()

    def bye(self, timeout: float = 5.0) -> int:
        """Hang up an answered call; returns the status of the BYE (408 if none arrived)."""
        with self._fe._cond:
            if not self._answered():
                raise RuntimeError(f"{self!r} is not an answered, live call")
            tx = self._send_bye()
        return self._fe._wait_tx(tx, timeout)

    def hold(self, timeout: float = 10.0) -> int:
        """re-INVITE with a=sendonly (we keep sending); returns its status."""
        return self._reinvite("sendonly", timeout)

    def unhold(self, timeout: float = 10.0) -> int:
        return self._reinvite("sendrecv", timeout)

    def send_dtmf(self, digits: str, duration_ms: int = 160, timeout: float = 10.0) -> None:
        """Send RFC 4733 events, one digit after the other; returns when the last end packet is out."""
        if not self._media.running or self._media.te_pt is None:
            raise RuntimeError("no media session with telephone-event")
        self._media.queue_dtmf(digits, duration_ms)
        deadline = time.monotonic() + timeout
        while not self._media.dtmf_idle():
            if time.monotonic() > deadline or not self._media.running:
                raise TimeoutError("DTMF not sent")
            time.sleep(0.01)

    def received_dtmf(self) -> str:
        return self._media.dtmf

    def audio_energy(self) -> float:
        """Mean |sample| (16-bit scale) of the audio received during the last second (0.0 if none)."""
        return self._media.energy()

    # -- internals (called with the FarEnd's lock held) --
    def _event(self, text: str) -> None:
        self.events.append((time.monotonic(), text))

    def _answered(self) -> bool:
        return self.final_status is not None and 200 <= self.final_status < 300 and not self.ended

    def _end(self, by: str) -> None:
        if not self.ended:
            self.ended, self.ended_by = True, by
            self._media.stop()
            self._event(f"ended: {by}")

    def _reinvite(self, direction: str, timeout: float) -> int:
        for attempt in range(2):
            with self._fe._cond:
                if not self._answered():
                    raise RuntimeError(f"{self!r} is not an answered, live call")
                self._reinvite_pending, self._pending_dir = True, direction
                request, dest = self._dialog_request("INVITE", self._sdp(direction))
                tx = self._fe._start_tx(request, dest, self)
            status = self._fe._wait_tx(tx, timeout)
            with self._fe._cond:
                self._reinvite_pending = False
            if status != 491 or attempt:
                return status
            time.sleep(0.1 + secrets.randbelow(300) / 1000)  # glare: retry once after a short random delay
        raise AssertionError("unreachable")

    def _sdp(self, direction: str, *, full: bool = False) -> bytes:
        m = self._media
        codecs = [(m.pt, m.codec)] + ([(m.te_pt, "telephone-event")] if m.te_pt is not None else [])
        if full:
            codecs = [(0, "PCMU"), (8, "PCMA"), (101, "telephone-event")]
        content = build_sdp(self._fe.bind, m.port, codecs, direction, session_id=self._session_id)
        if content != self._last_sdp:
            self._sdp_version, self._last_sdp = self._sdp_version + 1, content
        return build_sdp(
            self._fe.bind, m.port, codecs, direction, session_id=self._session_id, version=self._sdp_version
        )

    def _apply_sdp(self, sdp: Sdp, *, answerer: bool) -> None:
        """Take the remote side's offer (answerer) or answer into the media session."""
        check_loopback(sdp.address)
        names = ("PCMU", "PCMA")
        if answerer:
            pt = next((p for n in names if (p := sdp.pt_for(n)) is not None), None)
        else:
            pt = next((p for p, n in sdp.codecs.items() if n.upper() in names), None)
        if pt is None:
            raise ValueError("no PCMU/PCMA in the remote SDP")
        m = self._media
        m.remote, m.pt, m.codec, m.te_pt = (
            (sdp.address, sdp.port),
            pt,
            sdp.codecs[pt].upper(),
            sdp.pt_for("telephone-event"),
        )
        m.receive_codecs |= {p: n.upper() for p, n in sdp.codecs.items() if n.upper() in names}
        m.receive_te_pts |= {m.te_pt} if m.te_pt is not None else set()
        self._remote_dir = sdp.direction
        self._update_sending()

    def _update_sending(self) -> None:
        self._media.sending = self._local_dir in ("sendrecv", "sendonly") and self._remote_dir in (
            "sendrecv",
            "recvonly",
        )

    def _start_media(self) -> None:
        if self._media.remote is not None and not self.ended:
            self._media.start()
            self._event("media started")

    def _dialog_request(self, method: str, body: bytes = b"", cseq: int | None = None) -> tuple[SipMessage, Address]:
        if cseq is None:
            self._cseq += 1
            cseq = self._cseq
        uri, routes = self._remote_target, list(self._route_set)
        loose = bool(routes) and _is_loose(routes[0])
        if routes and not loose:  # strict router: it becomes the Request-URI
            uri, routes = _uri(routes[0]), [*routes[1:], f"<{self._remote_target}>"]
        headers = [("via", self._fe._via()), ("max-forwards", "70"), ("from", self._local_party),
                   ("to", self._remote_party), ("call-id", self.call_id), ("cseq", f"{cseq} {method}")]  # fmt: skip
        headers += [("route", r) for r in routes]
        if method == "INVITE":
            headers += [("contact", self._fe.contact), ("allow", ALLOW)]
        if body:
            headers.append(("content-type", "application/sdp"))
        return SipMessage(f"{method} {uri} SIP/2.0", headers, body), _uri_address(routes[0] if loose else uri)

    def _same_tx_request(self, invite: SipMessage, method: str, to: str) -> SipMessage:
        """CANCEL, or ACK for a non-2xx final, of an INVITE (same Via branch and Route)."""
        headers = [("via", invite.get("via") or ""), ("max-forwards", "70"), ("from", invite.get("from") or ""),
                   ("to", to), ("call-id", self.call_id), ("cseq", f"{invite.cseq[0]} {method}")]  # fmt: skip
        headers += [("route", r) for r in invite.get_all("route")]
        return SipMessage(f"{method} {invite.uri} SIP/2.0", headers)

    def _send_invite(self, dest: Address, auth: tuple[str, str] | None = None) -> None:
        self._cseq += 1
        headers = [("via", self._fe._via()), ("max-forwards", "70"), ("from", self._local_party),
                   ("to", self._remote_party), ("call-id", self.call_id), ("cseq", f"{self._cseq} INVITE"),
                   ("contact", self._fe.contact), ("allow", ALLOW), ("user-agent", "farend"),
                   ("content-type", "application/sdp"), *self._extra, *([auth] if auth else [])]  # fmt: skip
        request = SipMessage(f"INVITE {self.request_uri} SIP/2.0", headers, self._sdp("sendrecv", full=True))
        if self.invite is None:
            self.invite, self.headers = request, request.header_dict()
        self._invite_tx = self._fe._start_tx(request, dest, self)

    def _send_bye(self) -> _ClientTx:
        self._end("local-bye")
        request, dest = self._dialog_request("BYE")
        return self._fe._start_tx(request, dest, self)

    # caller side: responses to our INVITEs
    def _on_invite_response(self, tx: _ClientTx, response: SipMessage) -> None:
        initial = tx is self._invite_tx
        if response.status < 200:
            if initial and response.status in (180, 183) and self.ringing_at is None:
                self.ringing_at = time.monotonic()
                self._event(f"{response.status} received")
            if initial:
                self._early_sdp = parse_sdp(response.body) or self._early_sdp
        elif response.status < 300:
            self._on_invite_2xx(tx, response, initial)
        else:
            self._on_invite_failure(tx, response, initial)

    def _on_invite_2xx(self, tx: _ClientTx, response: SipMessage, initial: bool) -> None:
        if initial:
            self.remote_tag = _param(response.get("to") or "", "tag") or ""
            self._remote_party = response.get("to") or self._remote_party
            self._remote_target = _uri(response.get("contact") or self._remote_target)
            self._route_set = list(reversed(response.get_all("record-route")))
        ack, dest = self._dialog_request("ACK", cseq=tx.request.cseq[0])
        tx.ack = (ack.encode(), dest)
        self._fe._send(*tx.ack)
        answer = parse_sdp(response.body) or (self._early_sdp if initial else None)
        if initial:
            self.final_status, self.answered_at = response.status, time.monotonic()
            self._event(f"{response.status} received, ACK sent")
            if answer is not None:
                self._apply_sdp(answer, answerer=False)
                self._start_media()
            if self._cancelled:  # the answer crossed our CANCEL
                self._send_bye()
        elif answer is not None:
            self._local_dir = self._pending_dir
            self._apply_sdp(answer, answerer=False)
            self._event(f"re-INVITE ({self._pending_dir}) answered {answer.direction}")

    def _on_invite_failure(self, tx: _ClientTx, response: SipMessage, initial: bool) -> None:
        if not tx.timed_out:
            tx.ack = (self._same_tx_request(tx.request, "ACK", response.get("to") or "").encode(), tx.dest)
            self._fe._send(*tx.ack)
        status, auth = response.status, self._fe.auth
        if initial and status in (401, 407) and auth is not None and not self._auth_tried:
            self._auth_tried = True
            challenge = response.get("www-authenticate" if status == 401 else "proxy-authenticate") or ""
            value = digest_authorization(challenge, auth[0], auth[1], "INVITE", self.request_uri)
            self._send_invite(tx.dest, ("authorization" if status == 401 else "proxy-authorization", value))
            self._event(f"{status} received, INVITE resent with credentials")
        elif initial:
            self.final_status = status
            self._end("cancelled" if self._cancelled and status == 487 else "failed")
        else:
            self._event(f"re-INVITE failed: {status}")

    # callee side: requests from the remote party
    def _accept_invite(self, request: SipMessage, source: Address, offer: Sdp) -> None:
        self.invite, self.headers, self.request_uri, self._invite_addr = (
            request,
            request.header_dict(),
            request.uri,
            source,
        )
        self.from_user, self.to_user = _uri_user(request.get("from") or ""), _uri_user(request.get("to") or "")
        self.remote_tag = _param(request.get("from") or "", "tag") or ""
        self._remote_party, self._local_party = request.get("from") or "", f"{request.get('to')};tag={self.local_tag}"
        self._remote_target = _uri(request.get("contact") or request.get("from") or "")
        self._route_set = request.get_all("record-route")
        self._answer_body = self._take_offer(offer)

    def _take_offer(self, offer: Sdp) -> bytes:
        self._local_dir = _MIRROR[offer.direction]
        self.remote_hold = offer.direction in ("sendonly", "inactive")
        self._apply_sdp(offer, answerer=True)
        return self._sdp(self._local_dir)

    def _respond_invite(self, status: int, body: bytes = b"") -> bytes:
        assert self.invite is not None
        return self._fe._respond(self.invite, self._invite_addr, status, to_tag=self.local_tag, body=body)

    def _answer(self) -> None:
        if self.final_status is None and not self.ended:
            data = self._respond_invite(200, self._answer_body)
            self.final_status, self.answered_at = 200, time.monotonic()
            self._event("200 sent")
            self._resp_retx = _Retransmitter(self._fe, data, self._invite_addr, T2, self._no_ack)

    def _reject(self, status: int, ended_by: str) -> None:
        data = self._respond_invite(status)
        self.final_status = status
        self._end(ended_by)
        self._resp_retx = _Retransmitter(self._fe, data, self._invite_addr, T2, None)

    def _no_ack(self) -> None:
        self._event("no ACK for 200")
        if self._answered():
            self._send_bye()

    def _on_ack(self, request: SipMessage) -> None:
        if self._resp_retx is not None:
            self._resp_retx.stop()
        if (sdp := parse_sdp(request.body)) is not None:  # answer to the offer in our 200
            self._apply_sdp(sdp, answerer=False)
        if self.role == "uas" and self.final_status == 200 and not self._media.running and not self.ended:
            self._event("ACK received")
            self._start_media()

    def _on_request(self, request: SipMessage, source: Address) -> None:
        method, fe = request.method, self._fe
        if method == "BYE":
            fe._respond(request, source, 200)
            self._end("remote-bye")
        elif method in ("INVITE", "UPDATE") and self._reinvite_pending:
            fe._respond(request, source, 491)
        elif method in ("INVITE", "UPDATE"):
            offer = parse_sdp(request.body)
            try:
                body = self._take_offer(offer) if offer else self._sdp(self._local_dir)
            except ValueError:
                fe._respond(request, source, 488)
                return
            data = fe._respond(request, source, 200, body=body)
            self._event(f"{method} ({offer.direction if offer else 'no offer'}) answered")
            if method == "INVITE":
                self._resp_retx = _Retransmitter(fe, data, source, T2, None)
        else:
            fe._respond(request, source, 200 if method in ("OPTIONS", "INFO", "NOTIFY") else 501)


class FarEnd:
    """A SIP UA on one UDP socket (one receiver thread, dispatching by Call-ID); every call has its own RTP."""

    def __init__(self, bind: str = "127.0.0.1", sip_port: int = 0, *, auth: tuple[str, str] | None = None,
                 echo: bool = False, tone_hz: float = 440.0, user: str = "farend") -> None:  # fmt: skip
        check_loopback(bind)
        self.bind, self.auth, self.echo, self.tone_hz = bind, auth, echo, tone_hz
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((bind, sip_port))
        self.sip_port: int = self._sock.getsockname()[1]
        self.contact = f"<sip:{user}@{bind}:{self.sip_port}>"
        self.log: list[tuple[float, str, str]] = []  # (time, "in"/"out"/"error", first line)
        self.calls: dict[str, FarEndCall] = {}
        self._cond = threading.Condition(threading.RLock())
        self._client_tx: dict[tuple[str, str], _ClientTx] = {}
        self._responses: dict[tuple[str, str, str], tuple[bytes, Address]] = {}  # last response per request
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._incoming: deque[FarEndCall] = deque()
        self._serve: _Serve | None = None
        self._nonces: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"farend-sip-{self.sip_port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> Address:
        return self.bind, self.sip_port

    def __enter__(self) -> FarEnd:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def invite(self, target_uri: str, proxy: Address | None = None, from_user: str = "farend",
               *, headers: Iterable[tuple[str, str]] = ()) -> FarEndCall:  # fmt: skip
        """Call target_uri, sending the INVITE to proxy (default: the URI's host:port)."""
        dest = proxy or _uri_address(target_uri)
        check_loopback(dest[0])
        with self._cond:
            call = FarEndCall(self, "uac", f"{_token(8)}@{self.bind}")
            call.request_uri, call.from_user, call.to_user = target_uri, from_user, _uri_user(target_uri)
            call._local_party = f"<sip:{from_user}@{self.bind}>;tag={call.local_tag}"
            call._remote_party, call._remote_target = f"<{target_uri}>", target_uri
            call._extra = [(name.lower(), value) for name, value in headers]
            self.calls[call.call_id] = call
            call._send_invite(dest)
        return call

    def serve(self, answer_after: float = 0.2, behaviour: Behaviour = "answer",
              challenge: tuple[str, str, str] | None = None) -> None:  # fmt: skip
        """Take incoming INVITEs: "answer" after answer_after s, "busy" (486), or "ring" until cancelled.

        challenge=(realm, user, password) demands digest credentials first (401, then 403 if wrong).
        """
        if behaviour not in ("answer", "busy", "ring"):
            raise ValueError(f"unknown behaviour {behaviour!r}")
        with self._cond:
            self._serve = _Serve(answer_after, behaviour, challenge)

    def wait_incoming(self, timeout: float = 10.0) -> FarEndCall:
        """The next incoming call, in arrival order."""
        if not self._wait(lambda: bool(self._incoming), timeout):
            raise TimeoutError(f"no incoming call within {timeout}s")
        with self._cond:
            return self._incoming.popleft()

    def drain_incoming(self) -> list[FarEndCall]:
        """Forget the incoming calls not taken with wait_incoming() yet (a test's leftovers)."""
        with self._cond:
            left = list(self._incoming)
            self._incoming.clear()
        return left

    def close(self) -> None:
        """Hang up (best effort), stop the threads and close the sockets."""
        if self._stop.is_set():
            return
        txs: list[_ClientTx] = []
        with self._cond:
            for call in self.calls.values():
                try:
                    if call._answered():
                        txs.append(call._send_bye())
                    elif call.role == "uas" and call.final_status is None:
                        call._reject(480, "closed")
                    elif call._invite_tx is not None and call._invite_tx.provisional and call.final_status is None:
                        tx = call._invite_tx
                        self._start_tx(
                            call._same_tx_request(tx.request, "CANCEL", tx.request.get("to") or ""), tx.dest, None
                        )
                except (OSError, ValueError) as exc:
                    self._log("error", f"close: {exc}")
        self._wait(lambda: all(tx.final is not None for tx in txs), 1.0)
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        for call in self.calls.values():
            call._media.stop()
        for call in self.calls.values():
            call._media.join()

    # -- internals --
    def _log(self, direction: str, text: str) -> None:
        self.log.append((time.monotonic(), direction, text))

    def _via(self) -> str:
        return f"SIP/2.0/UDP {self.bind}:{self.sip_port};branch=z9hG4bK{_token(8)};rport"

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def _wait_tx(self, tx: _ClientTx, timeout: float) -> int:
        self._wait(lambda: tx.final is not None, timeout)
        return tx.final.status if tx.final is not None else 408

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        with self._cond:
            self._timers.append((time.monotonic() + delay, action))

    def _send(self, data: bytes, dest: Address) -> None:
        check_loopback(dest[0])
        self._sock.sendto(data, dest)
        self._log("out", data.split(b"\r\n", 1)[0].decode("utf-8", "replace"))

    def _start_tx(self, request: SipMessage, dest: Address, call: FarEndCall | None) -> _ClientTx:
        tx = _ClientTx(request, dest, call)
        data = request.encode()
        self._send(data, dest)
        self._client_tx[(request.branch, request.method)] = tx
        cap = None if request.method == "INVITE" else T2
        tx.retx = _Retransmitter(self, data, dest, cap, lambda: self._tx_timeout(tx))
        return tx

    def _tx_timeout(self, tx: _ClientTx) -> None:
        if tx.final is None:
            tx.timed_out = True
            headers = [("via", tx.request.get("via") or ""), ("cseq", tx.request.get("cseq") or "")]
            self._on_response(SipMessage("SIP/2.0 408 Request Timeout", headers))

    def _respond(self, request: SipMessage, source: Address, status: int, *, to_tag: str = "", body: bytes = b"",
                 extra: Iterable[tuple[str, str]] = ()) -> bytes:  # fmt: skip
        to = request.get("to") or ""
        if status > 100 and _param(to, "tag") is None:
            to = f"{to};tag={to_tag or _token(4)}"
        headers = [("via", v) for v in request.get_all("via")]
        headers += [("from", request.get("from") or ""), ("to", to), ("call-id", request.call_id),
                    ("cseq", request.get("cseq") or "")]  # fmt: skip
        if request.method == "INVITE" and 100 < status < 300:
            headers += [("record-route", r) for r in request.get_all("record-route")]
            headers += [("contact", self.contact), ("allow", ALLOW)]
        headers += [*extra, *([("content-type", "application/sdp")] if body else [])]
        data = SipMessage(f"SIP/2.0 {status} {REASONS.get(status, 'Unknown')}", headers, body).encode()
        self._responses[(request.call_id, request.branch, request.method)] = (data, source)
        self._send(data, source)
        return data

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self._sock], [], [], 0.02)
                data, source = self._sock.recvfrom(65535) if readable else (b"", ("", 0))
            except (OSError, ValueError):
                if self._stop.is_set():
                    break
                continue
            with self._cond:
                if data.strip():
                    self._guarded(functools.partial(self._dispatch, data, (source[0], source[1])))
                now = time.monotonic()
                due = [t for t in self._timers if t[0] <= now]
                self._timers = [t for t in self._timers if t[0] > now]
                for _, action in due:
                    self._guarded(action)
                self._cond.notify_all()

    def _guarded(self, action: Callable[[], None]) -> None:
        """Run a handler on the receiver thread; an error is logged, never fatal to the thread."""
        try:
            action()
        except Exception as exc:
            self._log("error", f"{type(exc).__name__}: {exc}")

    def _dispatch(self, data: bytes, source: Address) -> None:
        try:
            message = SipMessage.parse(data)
        except ValueError as exc:
            self._log("error", str(exc))
            return
        self._log("in", message.first_line)
        if message.is_request:
            self._on_request(message, source)
        else:
            self._on_response(message)

    def _on_response(self, response: SipMessage) -> None:
        tx = self._client_tx.get((response.branch, response.method))
        if tx is None:
            return
        if tx.final is not None:  # a retransmitted final: ACK it again
            if tx.ack is not None and response.status >= 200:
                self._send(*tx.ack)
            return
        if response.status >= 200:
            tx.final = response
        else:
            tx.provisional = True
        if tx.retx is not None and (response.status >= 200 or tx.request.method == "INVITE"):
            tx.retx.stop()
        if tx.call is not None and tx.request.method == "INVITE":
            tx.call._on_invite_response(tx, response)

    def _on_request(self, request: SipMessage, source: Address) -> None:
        method = request.method
        cached = self._responses.get((request.call_id, request.branch, method))
        if cached is not None and method != "ACK":  # a retransmission: repeat the last response
            self._send(*cached)
            return
        call = self.calls.get(request.call_id)
        to_tag = _param(request.get("to") or "", "tag")
        if method == "ACK":
            if call is not None:
                call._on_ack(request)
        elif method == "CANCEL":
            self._on_cancel(request, source, call)
        elif to_tag:
            if call is None or to_tag != call.local_tag:
                self._respond(request, source, 481)
            else:
                call._on_request(request, source)
        elif method == "INVITE":
            if call is not None:
                self._respond(request, source, 482)
            else:
                self._on_invite(request, source)
        else:
            self._respond(request, source, {"OPTIONS": 200, "INFO": 200, "BYE": 481}.get(method, 501))

    def _on_cancel(self, request: SipMessage, source: Address, call: FarEndCall | None) -> None:
        if call is None or call.role != "uas" or call.invite is None or call.invite.branch != request.branch:
            self._respond(request, source, 481)
            return
        self._respond(request, source, 200, to_tag=call.local_tag)
        if call.final_status is None:
            call._cancelled = True
            call._reject(487, "cancelled")

    def _on_invite(self, request: SipMessage, source: Address) -> None:
        serve = self._serve
        if serve is None:
            self._respond(request, source, 480)
            return
        if serve.challenge is not None and not self._authorized(request, source, *serve.challenge):
            return
        offer = parse_sdp(request.body)
        call = FarEndCall(self, "uas", request.call_id)
        try:
            if offer is None:
                raise ValueError("no SDP offer")
            call._accept_invite(request, source, offer)
        except ValueError as exc:
            call._media.stop()
            self._log("error", f"INVITE refused: {exc}")
            self._respond(request, source, 488)
            return
        self.calls[call.call_id] = call
        self._incoming.append(call)
        self._respond(request, source, 100)
        if serve.behaviour == "busy":
            call._reject(486, "busy")
            return
        call._respond_invite(180)
        if serve.behaviour == "answer":
            self._schedule(serve.answer_after, call._answer)

    def _authorized(self, request: SipMessage, source: Address, realm: str, user: str, password: str) -> bool:
        params = _digest_params(request.get("authorization") or "")
        if params.get("nonce") not in self._nonces or params.get("realm") != realm:
            nonce = _token(16)
            self._nonces.add(nonce)
            challenge = f'Digest realm="{realm}", nonce="{nonce}", qop="auth", algorithm=MD5'
            self._respond(request, source, 401, extra=[("www-authenticate", challenge)])
            return False
        self._nonces.discard(params["nonce"])
        expected = _digest(user, realm, password, request.method, params.get("uri", ""), params=params)
        ok = params.get("username") == user and params.get("uri") == request.uri and params.get("qop", "auth") == "auth"
        if not (ok and secrets.compare_digest(expected, params.get("response", ""))):
            self._respond(request, source, 403)
            return False
        return True
