"""Kamailio's forwarding outcome per DN, polled over JSON-RPC (htable.dump of fwdres).

Kamailio keeps Genesys's last answer to each mirrored REGISTER in the ``fwdres`` htable as
``"<code>|<expires>|<unix time>"`` per DN (408: no answer in time, 0: could not be sent). Kamailio
6.1 answers ``htable.dump`` with ``{"result": [{"entry": N, "size": M, "slot": [{"name": DN,
"value": "...", "type": "str"}]}, ...]}`` (see tests/unit/monitor/fixtures/*.htable.json).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import aiohttp

from .events import SOURCE_KAMAILIO, RegistrationEvent
from .state import ForwardOutcome, MonitorState

log = logging.getLogger("registration_monitor.kamailio")

HTABLE_REQUEST: Final = {"jsonrpc": "2.0", "method": "htable.dump", "params": ["fwdres"], "id": 1}
REQUEST_TIMEOUT: Final = 3.0


class RpcError(RuntimeError):
    """Kamailio could not be asked, or answered something else than a dump."""


def parse_htable_dump(result: Any) -> dict[str, ForwardOutcome]:
    """The ``result`` of htable.dump fwdres -> {dn: ForwardOutcome} (the gateway-state reporter's logic)."""
    forwarded: dict[str, ForwardOutcome] = {}
    for bucket in result or []:
        if not isinstance(bucket, dict):
            continue
        for item in bucket.get("slot", []) or []:
            if not isinstance(item, dict):
                continue
            fields = str(item.get("value", "")).split("|")
            try:
                code, expires, stamp = (int(v) for v in fields[:3])
                until = int(fields[3]) if len(fields) > 3 else None
                forwarded[str(item["name"])] = ForwardOutcome(code=code, expires=expires, time=stamp, until=until)
            except (KeyError, ValueError):
                continue
    return forwarded


def parse_reply(reply: Any) -> dict[str, ForwardOutcome]:
    """A whole JSON-RPC reply -> {dn: ForwardOutcome}; RpcError for a JSON-RPC error or another shape."""
    if not isinstance(reply, dict):
        raise RpcError("the JSON-RPC reply is not an object")
    if "error" in reply:
        error = reply["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise RpcError(f"JSON-RPC error: {message}")
    result = reply.get("result")
    if result is not None and not isinstance(result, list):
        raise RpcError("htable.dump returned no list")
    return parse_htable_dump(result)


class KamailioPoller:
    """Polls fwdres every ``interval`` seconds into the state; logs each new outcome as a JSON line."""

    def __init__(
        self,
        url: str,
        interval: float,
        state: MonitorState,
        emit: Callable[[RegistrationEvent], None],
        *,
        clock: Callable[[], float] = time.time,
        expected: bool = True,
    ) -> None:
        self.url = url
        self.interval = interval
        self.state = state
        self.emit = emit
        self.clock = clock
        # Static mode polls too (a switch to kamailio mode starts Kamailio before the monitor
        # changes mode); Kamailio is normally stopped then, which is not worth a warning.
        self.unreachable_level = logging.WARNING if expected else logging.INFO

    async def fetch(self, session: aiohttp.ClientSession) -> dict[str, ForwardOutcome]:
        try:
            async with session.post(self.url, json=HTABLE_REQUEST) as response:
                if response.status != 200:
                    raise RpcError(f"HTTP {response.status}")
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RpcError(str(exc) or type(exc).__name__) from exc
        return parse_reply(reply)

    async def poll_once(self, session: aiohttp.ClientSession) -> bool:
        """One poll; False when Kamailio could not be read (the last known outcomes are kept)."""
        try:
            snapshot = await self.fetch(session)
        except RpcError as exc:
            if self.state.kamailio_reachable is not False:
                log.log(self.unreachable_level, "Kamailio JSON-RPC at %s unreachable: %s", self.url, exc)
            self.state.kamailio_reachable = False
            return False
        if self.state.kamailio_reachable is not True:
            log.info("Kamailio JSON-RPC at %s reachable (%d DN outcome(s))", self.url, len(snapshot))
        self.state.kamailio_reachable = True
        now = self.clock()
        for dn, outcome in self.state.replace_forwarded(snapshot):
            self.emit(RegistrationEvent(now, dn, outcome.event, "", SOURCE_KAMAILIO, self.state.mode))
        return True

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=min(REQUEST_TIMEOUT, max(self.interval, 0.5)))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.poll_once(session)
                await asyncio.sleep(self.interval)
