"""Self-test of the browser phone harness (tests/lab/browser.py) without the lab.

Proves on this machine: Debian's Chromium starts under Playwright, the routed https page loads the
JsSIP bundle with a secure origin, the fake microphone gives an audio track, two RTCPeerConnections in
the page exchange audio that getStats counts, start() survives a refused WebSocket, and JsSIP
registers through a wss socket (to a throwaway TLS registrar on 127.0.0.1) with the page's Origin.
Nothing here talks to the lab's addresses: the pages use https://127.0.0.1:<closed port> origins.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import serve
from websockets.typing import Subprotocol

if os.environ.get("WEBRTC_REQUIRE_BROWSER") != "1":  # make test and CI require it: no quiet skip there
    pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -r requirements.txt)")

from lab.browser import Browser, Phone, browser_tests_mark

pytestmark = browser_tests_mark()

JSSIP_VERSION = json.loads((Path(__file__).resolve().parents[1] / "clients/package.json").read_text())["dependencies"][
    "jssip"
]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as chromium:
        yield chromium


@pytest.fixture
def phone(browser: Browser) -> Iterator[Phone]:
    page_phone = browser.open_phone(origin=f"https://127.0.0.1:{closed_port()}")
    yield page_phone
    page_phone.close()


def test_page_loads_jssip_on_a_secure_origin(phone: Phone) -> None:
    page = phone.js(
        "() => ({origin: location.origin, secure: isSecureContext, mediaDevices: Boolean(navigator.mediaDevices),"
        " phone: typeof window.phone, jssip: window.phone.jssipVersion, ua: typeof JsSIP.UA})"
    )
    assert page == {
        "origin": phone.origin,
        "secure": True,
        "mediaDevices": True,
        "phone": "object",
        "jssip": JSSIP_VERSION,
        "ua": "function",
    }, page
    assert phone.page_errors == []


def test_fake_microphone_gives_an_audio_track(phone: Phone) -> None:
    tracks = phone.js(
        """async () => {
            const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: false});
            const tracks = stream.getTracks().map((t) => ({kind: t.kind, state: t.readyState, label: t.label}));
            stream.getTracks().forEach((t) => t.stop());
            return tracks;
        }"""
    )
    assert len(tracks) == 1, tracks
    assert tracks[0]["kind"] == "audio" and tracks[0]["state"] == "live", tracks


def test_loopback_audio_counted_by_getstats(phone: Phone) -> None:
    offer = phone.start_loopback()
    assert offer == {"offerHasOpus": True, "offerHasTelephoneEvent": True}, offer
    first = phone.wait_media(min_packets=50, timeout=15)
    time.sleep(0.5)
    later = phone.stats()
    assert first["source"] == later["source"] == "loopback", later
    assert later["packetsSent"] > first["packetsSent"] > 50, (first, later)
    assert later["packetsReceived"] > first["packetsReceived"] > 50, (first, later)
    assert later["bytesReceived"] > first["bytesReceived"], (first, later)
    assert later["codec"] == "audio/opus/48000/2", later
    assert later["dtlsState"] == "connected", later
    assert later["iceState"] in {"connected", "completed"}, later
    pair = later["selectedCandidatePair"]
    assert pair and pair["local"]["type"] == "host" and pair["remote"]["type"] == "host", later
    assert isinstance(later["audioLevel"], float | int), later
    phone.stop_loopback()
    assert phone.stats()["source"] is None


def test_start_survives_a_refused_websocket(phone: Phone) -> None:
    port = closed_port()
    state = phone.start("1002", "secret", url=f"wss://127.0.0.1:{port}/ws")
    assert state["started"] is True and state["registered"] is False, state
    event = phone.wait_event("disconnected", timeout=10, match={"error": True})
    assert event["detail"]["code"] == 1006, event
    with pytest.raises(AssertionError, match=r"(?s)no 'registered' event since \[\d+\] within 0.5s.*disconnected"):
        phone.wait_registered(timeout=0.5)
    with pytest.raises(AssertionError, match="no active session"):
        phone.hold()


def test_refuses_addresses_off_loopback(browser: Browser) -> None:
    with pytest.raises(AssertionError, match="loopback"):
        browser.new_phone("1002", "secret", url="wss://192.0.2.10:8443/ws")
    with pytest.raises(AssertionError, match="loopback"):
        browser.open_phone(origin="https://gateway.example:8443")
    with pytest.raises(ValueError, match="wss"):
        browser.new_phone("1002", "secret", url="https://127.0.0.1:8443/ws")


# ---- a throwaway registrar: JsSIP through a real TLS WebSocket from the routed page ------------
def sip_reply(request: str) -> str:
    """200 OK to a REGISTER: the headers a UAC matches on copied, the binding echoed."""
    head = request.split("\r\n\r\n", 1)[0].split("\r\n")
    headers = [line.split(":", 1) for line in head[1:] if ":" in line]
    copied = [
        f"{name}:{value}" for name, value in headers if name.strip().lower() in {"via", "from", "call-id", "cseq"}
    ]
    to = next(value.strip() for name, value in headers if name.strip().lower() == "to")
    contact = next(value.strip() for name, value in headers if name.strip().lower() == "contact")
    expires = next((value.strip() for name, value in headers if name.strip().lower() == "expires"), "600")
    if ";tag=" not in to:
        to += f";tag={uuid.uuid4().hex[:8]}"
    lines = ["SIP/2.0 200 OK", *copied, f"To: {to}", f"Contact: {contact}", f"Expires: {expires}", "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


class Registrar:
    """wss://127.0.0.1:<port>/ws answering every REGISTER with 200 OK and relaying every other message
    (INVITE, responses, ACK, BYE...) unchanged to the other connected socket: enough for two pages to
    call each other through it. Records what it saw."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.origins: list[str | None] = []
        self.subprotocols: list[str | None] = []
        self.requests: list[str] = []
        self.clients: list[Any] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _handler(self, ws: Any) -> None:
        self.origins.append(ws.request.headers.get("Origin"))
        self.subprotocols.append(ws.subprotocol)
        self.clients.append(ws)
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                self.requests.append(text)
                if text.startswith("REGISTER "):
                    await ws.send(sip_reply(text))
                    continue
                for other in self.clients:
                    if other is not ws:
                        await other.send(text)
        finally:
            self.clients.remove(ws)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # Chromium opens spare TLS connections that it closes unused: not worth a logged traceback.
        quiet = logging.getLogger(f"{__name__}.registrar")
        quiet.setLevel(logging.CRITICAL)
        async with serve(
            self._handler, "127.0.0.1", 0, ssl=self.context, subprotocols=[Subprotocol("sip")], logger=quiet
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Registrar:
        self._thread.start()
        assert self._ready.wait(10), "registrar did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        reason = "openssl not found: no certificate for the throwaway registrar"
        if os.environ.get("WEBRTC_REQUIRE_BROWSER") == "1":  # make test and CI: never a quiet skip
            pytest.fail(f"browser tests required (WEBRTC_REQUIRE_BROWSER=1): {reason}")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [*request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_registers_and_unregisters_over_wss(browser: Browser, certificate: tuple[Path, Path]) -> None:
    with Registrar(*certificate) as registrar:
        url = f"wss://127.0.0.1:{registrar.port}/ws"
        phone = browser.new_phone("1002", "secret", url=url, expires=120)
        try:
            registered = phone.wait_registered(timeout=10)
            assert registered["detail"]["expires"] == "120", registered
            assert phone.state()["registered"] is True
            assert registrar.origins == [phone.origin] == [f"https://127.0.0.1:{registrar.port}"], registrar.origins
            assert registrar.subprotocols == ["sip"]
            register = registrar.requests[0]
            assert register.startswith("REGISTER sip:127.0.0.1 SIP/2.0\r\n"), register
            assert "From: <sip:1002@127.0.0.1>" in register and "\r\nExpires: 120\r\n" in register, register
            assert phone.unregister() is True
            assert "\r\nExpires: 0\r\n" in registrar.requests[-1], registrar.requests[-1]
            phone.wait_event("unregistered", timeout=5)
        finally:
            phone.close()


def test_call_hold_dtmf_hangup_between_two_pages(browser: Browser, certificate: tuple[Path, Path]) -> None:
    """The whole Phone API on a real call: two pages, SIP relayed by the throwaway registrar, DTLS-SRTP
    audio between the two pages' fake microphones."""
    with Registrar(*certificate) as registrar:
        url = f"wss://127.0.0.1:{registrar.port}/ws"
        alice = browser.new_phone("1002", "secret", url=url)
        bob = browser.new_phone("1003", "secret", url=url, auto_answer="answer", answer_delay_ms=300)
        try:
            alice.wait_registered()
            bob.wait_registered()
            mark = alice.call("1003")
            outgoing = alice.wait_event("newRTCSession", since=mark)
            assert outgoing["detail"]["direction"] == "outgoing", outgoing
            alice.wait_event("confirmed", timeout=15, since=mark, fail_on=("failed", "ended"))
            incoming = bob.wait_event("newRTCSession", match={"direction": "incoming"})
            assert incoming["detail"]["from"] == "sip:1002@127.0.0.1", incoming
            bob.wait_event("confirmed", fail_on=("failed", "ended"))
            assert alice.state()["sessionStatus"] == "confirmed", alice.state()
            for side in (alice, bob):
                media = side.wait_media(min_packets=50, timeout=15)
                assert media["source"] == "session" and media["dtlsState"] == "connected", media
                assert media["codec"] == "audio/opus/48000/2", media

            mark = bob.mark()
            alice.hold()
            assert alice.state()["onHold"] == {"local": True, "remote": False}, alice.state()
            bob.wait_event("hold", since=mark, match={"originator": "remote"})
            alice.unhold()
            bob.wait_event("unhold", since=mark, match={"originator": "remote"})
            alice.wait_media(min_packets=50)

            mark = alice.mark()
            alice.send_dtmf("1#")
            alice.wait_event("dtmfSent", since=mark, match={"tone": "1"})
            alice.wait_event("dtmfSent", since=mark, match={"tone": "#"})

            mark = bob.mark()
            assert alice.hangup() is True
            alice.wait_event("ended", match={"originator": "local"})
            ended = bob.wait_event("ended", since=mark, match={"originator": "remote"})
            assert ended["detail"]["cause"] == "Terminated", ended
        finally:
            alice.close()
            bob.close()


def test_incoming_call_reject_and_manual_answer(browser: Browser, certificate: tuple[Path, Path]) -> None:
    with Registrar(*certificate) as registrar:
        url = f"wss://127.0.0.1:{registrar.port}/ws"
        alice = browser.new_phone("1002", "secret", url=url)
        busy = browser.new_phone("1003", "secret", url=url, auto_answer="reject")
        try:
            alice.wait_registered()
            busy.wait_registered()
            mark = alice.call("1003")
            failed = alice.wait_event("failed", since=mark, fail_on=("confirmed",))
            assert failed["detail"]["statusCode"] == 486 and failed["detail"]["originator"] == "remote", failed
            with pytest.raises(AssertionError, match=r"(?s)'failed' at \[\d+\] while waiting for 'confirmed'"):
                alice.wait_event("confirmed", since=mark, fail_on=("failed",))
        finally:
            busy.close()
        ringing = browser.new_phone("1003", "secret", url=url, auto_answer="none")
        try:
            ringing.wait_registered()
            mark = alice.call("1003")
            incoming = ringing.wait_event("newRTCSession", match={"direction": "incoming"})
            assert incoming["detail"]["busy"] is False, incoming
            alice.wait_event("progress", since=mark, fail_on=("failed", "ended"))
            time.sleep(0.5)
            assert ringing.state()["sessionStatus"] == "waiting_for_answer", ringing.state()
            ringing.answer()
            alice.wait_event("confirmed", since=mark, fail_on=("failed", "ended"))
            ringing.wait_media(min_packets=20)
            assert ringing.hangup() is True
            alice.wait_event("ended", since=mark, match={"originator": "remote"})
        finally:
            alice.close()
            ringing.close()
