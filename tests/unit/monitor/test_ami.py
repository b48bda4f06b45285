"""The AMI client: backoff, reconnects, login refusal, sync on (re)connect and on Reload, event order.

The AMI peer is either a closed 127.0.0.1 port or FakeAmi replaying Asterisk 22's captured text;
the client is the real one (panoramisk underneath).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from registration_monitor import ami
from registration_monitor.ami import AmiClient, Backoff
from registration_monitor.config import Config, parse_config
from registration_monitor.events import CallLogEvent, RegistrationEvent, contacts_from_show_contacts, parse_change
from registration_monitor.state import MonitorState

from .captured import ami_fixture
from .fake_ami import FakeAmi, closed_port

SECRET = "fixture-secret-never-logged"
TIMEOUT = 10.0


def make_config(port: int, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "mode": "kamailio",
        "ami_host": "127.0.0.1",
        "ami_port": port,
        "ami_user": "monitor",
        "ami_secret": SECRET,
        "kamailio_rpc_url": "http://127.0.0.1:1/RPC",
        "listen_address": "127.0.0.1",
        "listen_port": 9110,
        "poll_interval": 1,
        "reconnect_initial_delay": 0.05,
        "reconnect_max_delay": 0.2,
        "action_timeout": 3,
    }
    data.update(overrides)
    return parse_config(data)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class RecordingSleep:
    """A fake clock for the backoff: records each delay, returns at once, stops the client after ``limit``."""

    def __init__(self, limit: int) -> None:
        self.delays: list[float] = []
        self.limit = limit
        self.done = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.limit:
            self.done.set()
            await asyncio.Event().wait()  # parked until the test cancels the client
        await asyncio.sleep(0)


async def run_until(client: AmiClient, condition: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(client.run())
    try:
        await asyncio.wait_for(condition, TIMEOUT)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --------------------------------------------------------------------------- backoff


def test_backoff_doubles_up_to_the_maximum_and_resets() -> None:
    backoff = Backoff(1.0, 30.0)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 1.0
    with pytest.raises(ValueError, match="initial"):
        Backoff(5, 1)


def test_a_closed_port_is_retried_with_growing_delays_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    config = make_config(port, reconnect_initial_delay=0.5, reconnect_max_delay=4)
    state = MonitorState("kamailio")
    sleep = RecordingSleep(limit=6)
    client = AmiClient(config, state, lambda _event: None, sleep=sleep)
    asyncio.run(run_until(client, sleep.done.wait()))
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    retries = [record.getMessage() for record in caplog.records if "reconnecting in" in record.getMessage()]
    assert len(retries) == 6
    assert retries[0].startswith(f"AMI 127.0.0.1:{port}: cannot connect (")
    assert retries[0].endswith("; reconnecting in 0.5 s (attempt 1)")
    assert retries[1].endswith("; reconnecting in 1 s (attempt 2)")
    assert retries[-1].endswith("; reconnecting in 4 s (attempt 6)")
    assert all(record.levelno == logging.WARNING for record in caplog.records if "reconnecting" in record.getMessage())
    assert state.ami_connected is False
    assert SECRET not in caplog.text


def test_a_refused_login_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> tuple[FakeAmi, RecordingSleep]:
        server = await FakeAmi().start()
        server.login_fixture = "01-login-failed.ami"
        sleep = RecordingSleep(limit=2)
        client = AmiClient(make_config(server.port), MonitorState("kamailio"), lambda _event: None, sleep=sleep)
        try:
            await run_until(client, sleep.done.wait())
        finally:
            await server.close()
        return server, sleep

    server, sleep = asyncio.run(scenario())
    assert server.connections == 2
    assert sleep.delays == [0.05, 0.1]
    assert "login refused (Authentication failed); reconnecting in 0.05 s (attempt 1)" in caplog.text
    assert "login refused (Authentication failed); reconnecting in 0.1 s (attempt 2)" in caplog.text
    assert SECRET not in caplog.text


# --------------------------------------------------------------------------- sessions against captured Asterisk text


def test_state_is_rebuilt_on_connect_and_again_after_an_asterisk_restart(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emitted: list[RegistrationEvent] = []
    state = MonitorState("kamailio", ["1002", "1003"])

    async def scenario() -> FakeAmi:
        server = await FakeAmi().start()
        server.answers = {
            "PJSIPShowContacts": "06-sync-registered.ami",
            "PJSIPShowRegistrationsOutbound": "03-sync-empty.ami",
        }
        client = AmiClient(make_config(server.port), state, emitted.append)
        task = asyncio.ensure_future(client.run())
        try:
            await until(lambda: state.synced, "the first sync")
            assert state.ami_connected
            assert state.registered_asterisk() == {"1002"}
            # Events after the sync: 1002 unregisters.
            await server.push("07-unregister-1002.ami")
            await until(lambda: not state.registered_asterisk(), "the Removed event")
            # Asterisk restarts; the restarted one holds 1002 and 1003 (astdb) and sends no event about them.
            server.answers["PJSIPShowContacts"] = "17-restart-sync.ami"
            server.login_fixture = "16-restart-login.ami"
            await server.restart()
            await until(lambda: state.ami_reconnects == 1 and state.synced, "the resync after the restart")
            assert state.registered_asterisk() == {"1002", "1003"}
            assert server.connections == 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()
        return server

    server = asyncio.run(scenario())
    # Every (re)connect starts with a login and the sync actions.
    assert server.actions()[:3] == ["Login", "PJSIPShowContacts", "PJSIPShowRegistrationsOutbound"]
    assert server.actions().count("Login") == 2
    messages = [record.getMessage() for record in caplog.records if record.name.startswith("registration_monitor")]
    lost = [message for message in messages if "Asterisk shut down (Cleanly, restart False)" in message]
    # After a good session the backoff starts again from the initial delay.
    assert [message.rsplit(": ", 1)[-1] for message in lost] == [
        "Asterisk shut down (Cleanly, restart False); reconnecting in 0.05 s (attempt 1)"
    ]
    assert any(message.endswith("reconnected as monitor") for message in messages)
    assert sum("state synced" in message for message in messages) >= 2
    # One JSON line per event: the live Removed of 1002, then what the resync revealed.
    lines = [json.loads(event.to_json()) for event in emitted]
    removed = [line for line in lines if line["source"] == "asterisk" and line["event"] == "Removed"]
    assert [line["dn"] for line in removed] == ["1002"]
    revealed = {(line["dn"], line["event"]) for line in lines if line["source"] == "asterisk-sync"}
    assert revealed >= {("1002", "NonQualified"), ("1003", "NonQualified")}
    assert SECRET not in caplog.text


def test_a_pjsip_reload_triggers_a_resync_that_drops_silently_removed_registrations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ami, "RELOAD_SETTLE", 0.05)
    state = MonitorState("static", ["1002", "1003"])

    async def scenario() -> FakeAmi:
        server = await FakeAmi().start()
        server.answers = {
            "PJSIPShowContacts": "03-sync-empty.ami",
            "PJSIPShowRegistrationsOutbound": "12-sync-static.ami",
        }
        client = AmiClient(make_config(server.port, mode="static"), state, lambda _event: None)
        task = asyncio.ensure_future(client.run())
        try:
            await until(lambda: state.synced, "the first sync")
            assert state.registrations == {"1002": "Registered", "1003": "Rejected"}
            assert state.bound_genesys(0) == {"1002"}
            server.answers["PJSIPShowRegistrationsOutbound"] = "14-sync-static-off.ami"
            await server.push("13-static-off.ami")  # Reload, then Registry Unregistered for 1002 only
            await until(lambda: state.registrations == {}, "the resync after the Reload")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()
        return server

    server = asyncio.run(scenario())
    assert server.connections == 1
    assert state.failures == {}  # the first snapshot's Rejected was a baseline


def test_a_sync_answered_with_an_error_is_retried_without_reconnecting(monkeypatch: pytest.MonkeyPatch) -> None:
    """E.g. AMI is up before PJSIP is loaded while Asterisk boots: "Invalid/unknown command"."""
    monkeypatch.setattr(ami, "SYNC_RETRY", 0.05)
    state = MonitorState("kamailio")

    async def scenario() -> FakeAmi:
        server = await FakeAmi().start()
        client = AmiClient(make_config(server.port), state, lambda _event: None)
        task = asyncio.ensure_future(client.run())
        try:
            await until(lambda: server.actions().count("PJSIPShowContacts") >= 2, "a retried sync")
            assert state.ami_connected and not state.synced
            server.answers = {
                "PJSIPShowContacts": "06-sync-registered.ami",
                "PJSIPShowRegistrationsOutbound": "03-sync-empty.ami",
            }
            await until(lambda: state.synced, "a sync once PJSIP answers")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()
        return server

    server = asyncio.run(scenario())
    assert server.connections == 1
    assert state.registered_asterisk() == {"1002"}


# --------------------------------------------------------------------------- events during a sync


class PendingManager:
    """Stands in for panoramisk's Manager in a sync: answers are released by the test."""

    def __init__(self) -> None:
        self.pending: dict[str, asyncio.Future[Any]] = {}

    def send_action(self, action: dict[str, str]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[action["Action"]] = future
        return future


def test_an_event_arriving_during_a_sync_is_not_lost() -> None:
    """The snapshot was taken before 1003 registered; its event arrived while the sync ran."""
    state = MonitorState("kamailio")
    client = AmiClient(make_config(1), state, lambda _event: None)
    [event_1003] = [event for event in ami_fixture("08-register-1003.ami").events if parse_change(event)]
    contacts = ami_fixture("06-sync-registered.ami").response("PJSIPShowContacts")
    registrations = ami_fixture("03-sync-empty.ami").response("PJSIPShowRegistrationsOutbound")
    channels = ami_fixture("calls/07-sync-idle.ami").response("CoreShowChannels")

    async def scenario() -> None:
        manager = PendingManager()
        sync = asyncio.ensure_future(client.sync(manager))
        await until(lambda: "PJSIPShowContacts" in manager.pending, "the contacts action")
        client.handle_event(event_1003)
        manager.pending["PJSIPShowContacts"].set_result(contacts)
        await until(lambda: "PJSIPShowRegistrationsOutbound" in manager.pending, "the registrations action")
        manager.pending["PJSIPShowRegistrationsOutbound"].set_result(registrations)
        await until(lambda: "CoreShowChannels" in manager.pending, "the channels action")
        manager.pending["CoreShowChannels"].set_result(channels)
        await sync

    asyncio.run(scenario())
    assert set(contacts_from_show_contacts(contacts)) == {"1002"}
    assert state.registered_asterisk() == {"1002", "1003"}
    assert state.synced


# --------------------------------------------------------------------------- calls


def test_calls_are_followed_and_resynced_from_core_show_channels_after_a_restart() -> None:
    emitted: list[Any] = []
    state = MonitorState("kamailio", ["1002", "1003"])

    async def scenario() -> FakeAmi:
        server = await FakeAmi().start()
        server.answers = {
            "PJSIPShowContacts": "06-sync-registered.ami",
            "PJSIPShowRegistrationsOutbound": "03-sync-empty.ami",
            "CoreShowChannels": "calls/15-sync-two-calls.ami",  # answered before the monitor started
        }
        client = AmiClient(make_config(server.port), state, emitted.append)
        task = asyncio.ensure_future(client.run())
        try:
            await until(lambda: state.synced, "the first sync")
            assert state.calls_by_direction() == {"inbound": 1, "outbound": 1}
            await server.push("calls/16-two-calls-hangup-by-callers.ami")
            await until(lambda: not state.calls_in_progress(), "the Hangups")
            for name in ("17-inbound-busy", "20-outbound-rejected-number"):
                await server.push(f"calls/{name}.ami")
            await until(lambda: sum(state.call_failures.values()) == 2, "the failures")
            await server.push("calls/08-inbound-answered.ami")
            await until(lambda: len(state.calls_in_progress()) == 1, "the answered call")
            # Asterisk restarts during that call; the restarted one has another call in progress.
            server.answers["CoreShowChannels"] = "calls/12-sync-outbound-call.ami"
            server.login_fixture = "16-restart-login.ami"
            await server.restart()
            await until(lambda: state.ami_reconnects == 1 and state.synced, "the resync after the restart")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()
        return server

    server = asyncio.run(scenario())
    assert server.actions()[:4] == ["Login", "PJSIPShowContacts", "PJSIPShowRegistrationsOutbound", "CoreShowChannels"]
    assert state.calls_by_direction() == {"inbound": 0, "outbound": 1}
    assert state.call_attempts == {"inbound": 2, "outbound": 1}  # the synced calls are no attempts seen
    assert state.call_failures == {("inbound", "busy"): 1, ("outbound", "rejected_number"): 1}
    lines = [json.loads(event.to_json()) for event in emitted if isinstance(event, CallLogEvent)]
    assert [(line["event"], line["direction"], line["source"]) for line in lines] == [
        ("CallStarted", "inbound", "asterisk-calls-sync"),
        ("CallStarted", "outbound", "asterisk-calls-sync"),
        ("CallEnded", "inbound", "asterisk-calls"),
        ("CallEnded", "outbound", "asterisk-calls"),
        ("CallFailed", "inbound", "asterisk-calls"),
        ("CallFailed", "outbound", "asterisk-calls"),
        ("CallStarted", "inbound", "asterisk-calls"),
        ("CallEnded", "inbound", "asterisk-calls-sync"),  # its Hangup was never seen
        ("CallStarted", "outbound", "asterisk-calls-sync"),
    ]
    assert [line["reason"] for line in lines if line["event"] == "CallFailed"] == ["busy", "rejected_number"]


def test_a_call_only_core_show_channels_knows_of_warns_about_the_missing_read_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A manager.conf without "call" (read=system,reporting,security): no call event ever comes, the
    periodic resync still finds the answered call (fixtures/calls/04-role-sync-inbound-call.ami)."""
    caplog.set_level(logging.DEBUG)
    state = MonitorState("kamailio", ["1002", "1003"])

    async def scenario() -> None:
        server = await FakeAmi().start()
        server.answers = {
            "PJSIPShowContacts": "06-sync-registered.ami",
            "PJSIPShowRegistrationsOutbound": "03-sync-empty.ami",
        }
        client = AmiClient(make_config(server.port, resync_interval=0.1), state, lambda _event: None)
        task = asyncio.ensure_future(client.run())
        try:
            await until(lambda: state.synced, "the first sync")
            await server.push("calls/03-role-inbound-answered.ami")  # what such a user gets: no call event
            server.answers["CoreShowChannels"] = "calls/04-role-sync-inbound-call.ami"
            await until(lambda: len(state.calls_in_progress()) == 1, "the call found by a resync")
            server.answers["CoreShowChannels"] = "calls/07-sync-idle.ami"
            await until(lambda: not state.calls_in_progress(), "the call gone at a resync")
            server.answers["CoreShowChannels"] = "calls/04-role-sync-inbound-call.ami"
            await until(lambda: len(state.calls_in_progress()) == 1, "the call found again")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()

    asyncio.run(scenario())
    warnings = [record.getMessage() for record in caplog.records if "needs read=call" in record.getMessage()]
    assert len(warnings) == 1  # once
    assert state.call_attempts == {}
