"""The whole monitor (__main__.run): AMI (FakeAmi), Kamailio (captured replies) and its HTTP endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from registration_monitor.__main__ import run
from registration_monitor.events import RegistrationEvent

from .captured import FIXTURES
from .fake_ami import FakeAmi, closed_port
from .test_ami import SECRET, make_config


async def poll(url: str, condition: Callable[[int, dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    body = await response.json()
                    if condition(response.status, body):
                        return dict(body)
            except aiohttp.ClientConnectionError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{url} never satisfied the condition")
            await asyncio.sleep(0.02)


def test_the_monitor_end_to_end_in_kamailio_mode(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emitted: list[RegistrationEvent] = []

    async def kamailio_rpc(_request: web.Request) -> web.Response:
        body = (FIXTURES / "08-register-1003.htable.json").read_bytes()  # 1002 unregistered, 1003 rejected (403)
        return web.Response(body=body, content_type="application/json")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
        ami = await FakeAmi().start()
        ami.answers = {
            "PJSIPShowContacts": "17-restart-sync.ami",  # 1002 and 1003 have a contact at Asterisk
            "PJSIPShowRegistrationsOutbound": "03-sync-empty.ami",
        }
        kamailio_app = web.Application()
        kamailio_app.router.add_post("/RPC", kamailio_rpc)
        kamailio = web.AppRunner(kamailio_app)
        await kamailio.setup()
        await web.TCPSite(kamailio, "127.0.0.1", 0).start()
        listen = closed_port()
        config = make_config(
            ami.port,
            kamailio_rpc_url=f"http://127.0.0.1:{kamailio.addresses[0][1]}/RPC",
            listen_port=listen,
            poll_interval=0.05,
            dns=["1002", "1003"],
        )
        monitor = asyncio.ensure_future(run(config, emitted.append))
        base = f"http://127.0.0.1:{listen}"
        try:
            healthy = await poll(f"{base}/healthz", lambda status, body: status == 200 and body["synced"])
            state = await poll(f"{base}/state", lambda _status, body: body["kamailio_reachable"] is True)
            async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
                metrics = await response.text()
            await ami.restart()
            down = await poll(f"{base}/healthz", lambda status, _body: status == 503)
        finally:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
            await kamailio.cleanup()
            await ami.close()
        return healthy, state, down, metrics

    healthy, state, down, metrics = asyncio.run(scenario())
    assert healthy["mode"] == "kamailio" and healthy["counts"]["registered_asterisk"] == 2
    assert state["dns"] == {
        "1002": {"registered_asterisk": True, "bound_genesys": False, "bound_static": False, "bound_kamailio": False},
        "1003": {"registered_asterisk": True, "bound_genesys": False, "bound_static": False, "bound_kamailio": False},
    }
    assert state["counts"] == {"registered_asterisk": 2, "bound_genesys": 0, "unbound_genesys": 2}
    assert "webrtc_directory_numbers_unbound_genesys 2.0" in metrics
    assert "webrtc_monitor_ami_connected 1.0" in metrics
    assert down["ami_connected"] is False
    sources = {json.loads(event.to_json())["source"] for event in emitted}
    assert sources == {"asterisk-sync", "genesys-kamailio"}
    assert SECRET not in caplog.text
