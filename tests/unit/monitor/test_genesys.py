"""Static mode's Genesys probe (OPTIONS over a real UDP socket on 127.0.0.1) and the paced re-send of
every static registration when Genesys answers again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from registration_monitor.ami import AmiClient
from registration_monitor.events import registration_objects_from_show_outbound
from registration_monitor.genesys import GenesysProbe, options_request, parse_answer
from registration_monitor.state import MonitorState

from .captured import ami_fixture
from .test_ami import make_config


def test_the_request_and_its_answer() -> None:
    request = options_request(
        ("127.0.0.81", 5060), ("127.0.0.54", 40000), domain="g.lab", call_id="abc@x", branch="b1", tag="t1", cseq=7
    )
    text = request.decode()
    assert text.startswith("OPTIONS sip:127.0.0.81:5060 SIP/2.0\r\n")
    assert "Via: SIP/2.0/UDP 127.0.0.54:40000;branch=z9hG4bKb1;rport\r\n" in text
    assert "Call-ID: abc@x\r\n" in text and "CSeq: 7 OPTIONS\r\n" in text and text.endswith("\r\n\r\n")
    assert parse_answer(b"SIP/2.0 503 Service Unavailable\r\nCall-ID: abc@x\r\n\r\n") == ("abc@x", 503)
    assert parse_answer(b"SIP/2.0 200 OK\r\ni: compact@x\r\n\r\n") == ("compact@x", 200)
    assert parse_answer(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n") is None  # a request, not an answer
    assert parse_answer(b"SIP/2.0 200 OK\r\n\r\n") is None  # no Call-ID


class Registrar(asyncio.DatagramProtocol):
    """A UDP peer on 127.0.0.1 answering each OPTIONS with ``code`` (None: silence)."""

    def __init__(self) -> None:
        self.code: int | None = 200
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received += 1
        call_id = next(line for line in data.decode().split("\r\n") if line.startswith("Call-ID:"))
        if self.code is not None and self.transport is not None:
            self.transport.sendto(b"SIP/2.0 100 Trying\r\n" + call_id.encode() + b"\r\n\r\n", addr)  # not final
            self.transport.sendto(f"SIP/2.0 {self.code} X\r\n{call_id}\r\n\r\n".encode(), addr)


def test_genesys_answering_again_after_silence_and_503_sends_the_registrations_once_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> tuple[list[bool], int, list[int], int]:
        loop = asyncio.get_running_loop()
        transport, registrar = await loop.create_datagram_endpoint(Registrar, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        changes: list[bool] = []
        backs: list[int] = []

        async def back() -> None:
            backs.append(registrar.received)

        probe = GenesysProbe(
            ("127.0.0.1", port), "127.0.0.1", domain="genesys.lab", interval=0.2, on_back=back, on_change=changes.append
        )
        task = asyncio.ensure_future(probe.run())
        try:
            for code in (200, None, 200, 503, 404):  # up, silent, back, 5xx, back (any answer below 500)
                registrar.code = code
                seen = registrar.received
                while registrar.received < seen + 2:  # two probes in each state
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.25)
        finally:
            task.cancel()
            transport.close()
        return changes, len(backs), backs, registrar.received

    with caplog.at_level(logging.INFO, logger="registration_monitor.genesys"):
        changes, backs, _, probes = asyncio.run(scenario())
    assert changes == [True, False, True, False, True]
    assert backs == 2  # once per return, never on the first answer
    assert probes >= 10
    messages = [record.getMessage() for record in caplog.records]
    assert any("stopped answering (no answer)" in m for m in messages)
    assert any("stopped answering (503)" in m for m in messages)
    assert sum("answers again" in m for m in messages) == 2


class Manager:
    """Records each action and the loop time it was sent; refuses the registrations named in ``refuse``."""

    def __init__(self, refuse: set[str]) -> None:
        self.sent: list[tuple[float, dict[str, str]]] = []
        self.refuse = refuse

    async def send_action(self, action: dict[str, str]) -> dict[str, Any]:
        self.sent.append((asyncio.get_running_loop().time(), action))
        if action.get("Registration") in self.refuse:
            return {"Response": "Error", "Message": "Unable to retrieve registration entry"}
        if action.get("Registration") == "genesys-reg-1011":  # Asterisk acknowledges this failure
            return {"Response": "Success", "Message": "Failed to queue unregistration"}
        return {"Response": "Success", "Message": "Reregistration sent"}


def test_every_static_registration_is_sent_again_paced(caplog: pytest.LogCaptureFixture) -> None:
    client = AmiClient(make_config(1, mode="static"), MonitorState("static", ()), lambda _event: None)
    client.registration_objects = {f"{1000 + i}": f"genesys-reg-{1000 + i}" for i in range(45)}
    manager = Manager(refuse={"genesys-reg-1007"})
    client._manager = manager  # a logged-in session

    async def scenario() -> tuple[int, int]:
        return await client.register_static(rate=100)  # 10 per tenth of a second

    with caplog.at_level(logging.INFO, logger="registration_monitor.ami"):
        sent, refused = asyncio.run(scenario())
    assert (sent, refused) == (45, 2)
    names = [action["Registration"] for _, action in manager.sent]
    assert sorted(names) == sorted(client.registration_objects.values()) and len(set(names)) == 45
    assert {action["Action"] for _, action in manager.sent} == {"PJSIPRegister"}
    times = [when for when, _ in manager.sent]
    span = times[-1] - times[0]
    assert 0.38 <= span < 1.0, span  # five batches of at most 10, 0.1 s apart: 45 at 100/s
    for second in range(len(times)):
        window = [t for t in times if times[second] <= t < times[second] + 0.09]
        assert len(window) <= 10  # no burst above the rate
    assert any("refused: genesys-reg-1007, genesys-reg-1011" in record.getMessage() for record in caplog.records)


def test_nothing_is_sent_without_a_session(caplog: pytest.LogCaptureFixture) -> None:
    client = AmiClient(make_config(1, mode="static"), MonitorState("static", ()), lambda _event: None)
    client.registration_objects = {"1002": "genesys-reg-1002"}
    with caplog.at_level(logging.WARNING, logger="registration_monitor.ami"):
        assert asyncio.run(client.register_static(rate=200)) == (0, 0)
    assert any("not logged in" in record.getMessage() for record in caplog.records)


def test_the_registration_names_come_from_asterisks_answer() -> None:
    answer = ami_fixture("12-sync-static.ami").response("PJSIPShowRegistrationsOutbound")
    assert registration_objects_from_show_outbound(answer) == {"1002": "genesys-reg-1002", "1003": "genesys-reg-1003"}
