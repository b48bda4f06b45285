"""Kamailio's fwdres over JSON-RPC: the captured htable.dump replies, served by a fake Kamailio (aiohttp)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from registration_monitor.events import RegistrationEvent
from registration_monitor.kamailio import HTABLE_REQUEST, KamailioPoller, RpcError, parse_reply
from registration_monitor.state import ForwardOutcome, MonitorState

from .captured import FIXTURES, HTABLE_FIXTURES, MANIFEST, fixture_time, htable_fixture
from .fake_ami import closed_port


@pytest.mark.parametrize("name", HTABLE_FIXTURES)
def test_every_htable_fixture_parses(name: str) -> None:
    reply = htable_fixture(name)
    outcomes = parse_reply(reply)
    items = [item for bucket in reply["result"] for item in bucket["slot"]]
    assert sorted(outcomes) == sorted(item["name"] for item in items)
    for item in items:
        code, expires, stamp = item["value"].split("|")
        assert outcomes[item["name"]] == ForwardOutcome(int(code), int(expires), int(stamp))


def test_the_request_is_the_one_the_fixtures_were_captured_with() -> None:
    assert json.loads(MANIFEST["htable_request"]) == HTABLE_REQUEST
    assert MANIFEST["kamailio_version"].split()[2].startswith("6.1")


@pytest.mark.parametrize(
    "reply",
    [
        {"jsonrpc": "2.0", "error": {"code": 500, "message": "Hash table not found"}, "id": 1},
        {"jsonrpc": "2.0", "result": {"not": "a list"}, "id": 1},
        ["not", "an", "object"],
    ],
)
def test_an_rpc_error_is_not_an_empty_table(reply: Any) -> None:
    with pytest.raises(RpcError):
        parse_reply(reply)


def test_odd_slots_are_skipped() -> None:
    reply = {"result": [{"slot": [{"name": "1002", "value": "garbage"}, {"value": "200|1|2"}, "x"]}, "y"]}
    assert parse_reply(reply) == {}


class FakeKamailio:
    """Answers POST /RPC with one captured htable.dump reply after the other."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.requests: list[Any] = []

    def app(self) -> web.Application:
        async def rpc(request: web.Request) -> web.Response:
            self.requests.append(await request.json())
            name = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
            return web.Response(body=(FIXTURES / name).read_bytes(), content_type="application/json")

        app = web.Application()
        app.router.add_post("/RPC", rpc)
        return app


def test_poller_follows_the_outcomes_and_logs_each_new_one() -> None:
    state = MonitorState("kamailio", ["1002", "1003"])
    emitted: list[RegistrationEvent] = []
    kamailio = FakeKamailio(
        ["04-register-1002.htable.json", "08-register-1003.htable.json", "10-register-1002-genesys-silent.htable.json"]
    )
    now = float(fixture_time("10-register-1002-genesys-silent.htable.json"))

    async def scenario() -> list[bool]:
        runner = web.AppRunner(kamailio.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        poller = KamailioPoller(f"http://127.0.0.1:{port}/RPC", 0.01, state, emitted.append, clock=lambda: now)
        try:
            async with aiohttp.ClientSession() as session:
                return [await poller.poll_once(session) for _ in range(3)]
        finally:
            await runner.cleanup()

    assert asyncio.run(scenario()) == [True, True, True]
    assert kamailio.requests == [HTABLE_REQUEST] * 3
    assert state.kamailio_reachable is True
    assert state.forwarded["1002"].code == 408
    # Baseline: the first dump. Then 1003's 403, 1002's timeout and 1003's second 403 (its reconnected client).
    assert state.failures == {"403": 2, "timeout": 1}
    lines = [json.loads(event.to_json()) for event in emitted]
    assert [(line["dn"], line["event"], line["source"]) for line in lines] == [
        ("1002", "Registered", "genesys-kamailio"),
        ("1002", "Unregistered", "genesys-kamailio"),
        ("1003", "Rejected 403", "genesys-kamailio"),
        ("1002", "Timeout", "genesys-kamailio"),
        ("1003", "Rejected 403", "genesys-kamailio"),
    ]


def test_poller_marks_kamailio_unreachable_and_logs_it_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    state = MonitorState("kamailio")
    state.replace_forwarded(parse_reply(htable_fixture("04-register-1002.htable.json")))
    poller = KamailioPoller(f"http://127.0.0.1:{closed_port()}/RPC", 0.01, state, lambda _event: None)

    async def scenario() -> list[bool]:
        async with aiohttp.ClientSession() as session:
            return [await poller.poll_once(session) for _ in range(3)]

    assert asyncio.run(scenario()) == [False, False, False]
    assert state.kamailio_reachable is False
    assert "1002" in state.forwarded  # the last known outcomes stay
    assert [record.levelno for record in caplog.records if "unreachable" in record.getMessage()] == [logging.WARNING]


def test_in_static_mode_a_stopped_kamailio_is_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    state = MonitorState("static")
    poller = KamailioPoller(f"http://127.0.0.1:{closed_port()}/RPC", 0.01, state, lambda _e: None, expected=False)

    async def scenario() -> bool:
        async with aiohttp.ClientSession() as session:
            return await poller.poll_once(session)

    assert asyncio.run(scenario()) is False
    assert [record.levelno for record in caplog.records if "unreachable" in record.getMessage()] == [logging.INFO]
