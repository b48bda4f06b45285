"""Static mode: Genesys probed with SIP OPTIONS; when it answers again, every static registration is sent again.

Asterisk refreshes a static registration when its expiration nears (600 s by default) and retries a
failed one every ``retry_interval``. A Genesys that stopped answering for less than that and came
back having forgotten its bindings (a restart, a failover to a partner without them) leaves every DN
unreachable until the next refresh, while Asterisk still shows it "Registered". Kamailio mode probes
Genesys itself and re-asserts every forwarded binding; this is the same for static mode: an OPTIONS
every ``interval`` seconds to the address the static registrations use; an answer below 500 within
the interval means "answering", no answer or a 5xx means "not answering"; on the change from not
answering to answering, ``on_back`` runs (the AMI client sends ``PJSIPRegister`` for each static
registration, paced).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger("registration_monitor.genesys")

# A final answer below this means Genesys is there (a 401/403/404/405 to OPTIONS included).
FIRST_FAILING_CODE: Final = 500


def options_request(
    target: tuple[str, int], local: tuple[str, int], *, domain: str, call_id: str, branch: str, tag: str, cseq: int
) -> bytes:
    """An out-of-dialog OPTIONS to Genesys's address (RFC 3261 8.1.1)."""
    host, port = target
    local_host, local_port = local
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local_host}:{local_port};branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:webrtc-monitor@{domain}>;tag={tag}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} OPTIONS\r\n"
        "Accept: application/sdp\r\n"
        "User-Agent: webrtc-genesys registration-monitor\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def parse_answer(datagram: bytes) -> tuple[str, int] | None:
    """(Call-ID, status code) of a SIP response; None for anything else."""
    head, _, _ = datagram.decode("utf-8", "replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[0] != "SIP/2.0" or not status[1].isdigit():
        return None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in ("call-id", "i"):
            return value.strip(), int(status[1])
    return None


class _Answers(asyncio.DatagramProtocol):
    """Hands each answer to the probe waiting for its Call-ID; anything else is dropped."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[int]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        answer = parse_answer(data)
        if answer is None:
            return
        call_id, code = answer
        future = self.waiting.get(call_id)
        if future is not None and not future.done() and code >= 200:  # final answers only
            future.set_result(code)


class GenesysProbe:
    """Probes one Genesys address every ``interval`` seconds; calls ``on_back`` when it answers again."""

    def __init__(
        self,
        target: tuple[str, int],
        local_host: str,
        *,
        domain: str,
        interval: float,
        on_back: Callable[[], Awaitable[object]],
        on_change: Callable[[bool], None] = lambda _answering: None,
    ) -> None:
        self.target = target
        self.local_host = local_host
        self.domain = domain
        self.interval = interval
        self.on_back = on_back
        self.on_change = on_change
        self.answering: bool | None = None
        self._cseq = 0
        self._tag = secrets.token_hex(6)

    def where(self) -> str:
        return f"{self.target[0]}:{self.target[1]}"

    async def probe(self, transport: asyncio.DatagramTransport, answers: _Answers) -> int | None:
        """One OPTIONS; the final answer's code, or None when none came within the interval."""
        self._cseq += 1
        call_id = f"{secrets.token_hex(8)}@webrtc-monitor"
        local = transport.get_extra_info("sockname")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        answers.waiting[call_id] = future
        request = options_request(
            self.target,
            (local[0], local[1]),
            domain=self.domain,
            call_id=call_id,
            branch=secrets.token_hex(8),
            tag=self._tag,
            cseq=self._cseq,
        )
        try:
            transport.sendto(request, self.target)
            return await asyncio.wait_for(future, self.interval)
        except TimeoutError:
            return None
        finally:
            answers.waiting.pop(call_id, None)

    def observe(self, code: int | None) -> bool:
        """Record one probe's outcome; True when Genesys answers again after it stopped."""
        answering = code is not None and code < FIRST_FAILING_CODE
        was, self.answering = self.answering, answering
        if was is not None and was != answering:
            if answering:
                log.info("Genesys at %s answers again (%d)", self.where(), code)
            else:
                how = "no answer" if code is None else str(code)
                log.warning("Genesys at %s stopped answering (%s)", self.where(), how)
        if was != answering:
            self.on_change(answering)
        return was is False and answering

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        transport, answers = await loop.create_datagram_endpoint(_Answers, local_addr=(self.local_host, 0))
        log.info("probing Genesys at %s every %g s (OPTIONS)", self.where(), self.interval)
        try:
            while True:
                started = loop.time()
                code = await self.probe(transport, answers)
                if self.observe(code):
                    await self.on_back()
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
        finally:
            transport.close()
