"""The AMI side: a panoramisk connection kept up with backoff, state rebuilt from actions on each login.

One *session* is: connect, log in, sync (``PJSIPShowContacts`` + ``PJSIPShowRegistrationsOutbound`` +
``CoreShowChannels``), then follow ``ContactStatus``/``Registry`` events and the call events
(``Newchannel``, ``DialBegin``, ``DialEnd``, ``Hangup``) until the connection is lost. The state is synced
again on ``FullyBooted`` (Asterisk finished booting, also sent right after a login), on a PJSIP
``Reload`` (a removed static registration sends no event of its own) and every ``resync_interval``
seconds (also proves the connection still answers). panoramisk's own fixed-delay reconnect is
switched off: :class:`AmiClient` reconnects with exponential backoff and logs every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from panoramisk import Manager

from .config import Config
from .events import (
    CALL_STARTED,
    RESYNC_EVENTS,
    SOURCE_ASTERISK,
    SOURCE_CALLS,
    SOURCE_STATIC,
    WATCHED,
    ActionError,
    CallEvent,
    Change,
    ContactChange,
    LogEvent,
    RegistryChange,
    channels_from_show_channels,
    contacts_from_show_contacts,
    event_name,
    header,
    parse_call_event,
    parse_change,
    registration_objects_from_show_outbound,
    registrations_from_show_outbound,
    to_log_event,
)
from .state import MonitorState

log = logging.getLogger("registration_monitor.ami")

SYNC_ACTIONS: Final = ("PJSIPShowContacts", "PJSIPShowRegistrationsOutbound", "CoreShowChannels")
# Wait after a Reload event before the sync: the reloaded registrations are being (re)created.
RELOAD_SETTLE: Final = 1.0
# Retry of a sync that was answered with an error (e.g. PJSIP not loaded yet while Asterisk boots).
SYNC_RETRY: Final = 5.0
PING_INTERVAL: Final = 10

T = TypeVar("T")


class AmiLoginError(RuntimeError):
    """Asterisk refused the login (wrong user/secret, address not permitted)."""


class AmiDisconnected(ConnectionError):
    """The AMI connection was closed (Asterisk stopped or restarted, network)."""


class Backoff:
    """Exponential reconnect delays: initial, initial*2, ... capped at maximum; reset after a good session."""

    def __init__(self, initial: float, maximum: float, factor: float = 2.0) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


class QuietManager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's Manager without its own reconnects: the session is told about a lost connection."""

    pinger: Any

    def __init__(self, on_lost: Callable[[object], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled() or f.exception() is not None:
            return  # the session awaits the same task and sees the error
        super().connection_made(f)

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self._on_lost(exc)


def describe_loss(cause: object) -> str:
    if isinstance(cause, Mapping) and event_name(cause) == "Shutdown":
        return f"Asterisk shut down ({header(cause, 'Shutdown') or '?'}, restart {header(cause, 'Restart') or '?'})"
    if isinstance(cause, BaseException):
        return f"connection lost: {cause}" if str(cause) else f"connection lost: {type(cause).__name__}"
    return "connection closed by Asterisk"


def _succeeded(answer: object) -> bool:
    """An AMI action's answer says Success (panoramisk gives a list for multi-message answers).
    PJSIPRegister acknowledges a failure to queue with Success too: its Message says "Failed"."""
    if isinstance(answer, list):
        answer = answer[0] if answer else None
    return (
        isinstance(answer, Mapping)
        and header(answer, "Response").lower() == "success"
        and not header(answer, "Message").lower().startswith("failed")
    )


class AmiClient:
    """Keeps an AMI session up and the AMI half of the state right; emits one JSON line per event."""

    def __init__(
        self,
        config: Config,
        state: MonitorState,
        emit: Callable[[LogEvent], None],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        manager_class: Callable[..., Any] = QuietManager,
    ) -> None:
        self.config = config
        self.state = state
        self.emit = emit
        self.clock = clock
        self.sleep = sleep
        self.manager_class = manager_class
        self.backoff = Backoff(config.reconnect_initial_delay, config.reconnect_max_delay)
        self.sessions = 0
        self._resync: asyncio.Event | None = None
        self._buffer: list[Change | CallEvent] | None = None
        self._synced_once_this_session = False
        self._warned_call_events = False
        self._manager: Any = None
        # DN -> name of its static registration at Asterisk (from the last sync)
        self.registration_objects: dict[str, str] = {}

    @property
    def address(self) -> str:
        return f"{self.config.ami_host}:{self.config.ami_port}"

    # ---------------------------------------------------------------- the reconnect loop

    async def run(self) -> None:
        """Forever: a session; when it ends, wait (backoff) and start another one."""
        while True:
            try:
                await self.session()
            except asyncio.CancelledError:
                raise
            except AmiLoginError as exc:
                reason = f"login refused ({exc})"
            except AmiDisconnected as exc:
                reason = str(exc)
            except TimeoutError:
                reason = "no answer in time"
            except ActionError as exc:
                reason = f"unexpected answer ({exc})"
            except OSError as exc:
                reason = f"cannot connect ({exc.strerror or exc})"
            if self._synced_once_this_session:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            log.warning(
                "AMI %s: %s; reconnecting in %.3g s (attempt %d)", self.address, reason, delay, self.backoff.attempts
            )
            await self.sleep(delay)

    async def session(self) -> None:
        """One connection, from connect to loss. Always ends with an exception."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[object] = loop.create_future()
        self._resync = asyncio.Event()
        self._synced_once_this_session = False

        def on_lost(cause: object) -> None:
            if not lost.done():
                lost.set_result(cause)

        manager = self.manager_class(
            on_lost=on_lost,
            loop=loop,
            host=self.config.ami_host,
            port=self.config.ami_port,
            username=self.config.ami_user,
            secret=self.config.ami_secret.reveal(),
            events="on",
            ping_delay=PING_INTERVAL,
            ping_interval=PING_INTERVAL,
            forgetable_actions=("ping", "login", *(action.lower() for action in SYNC_ACTIONS)),
            log=logging.getLogger("registration_monitor.panoramisk"),
        )
        for name in (*WATCHED, *RESYNC_EVENTS):
            manager.register_event(name, self._on_event)
        try:
            await asyncio.wait_for(manager.connect(), self.config.action_timeout)
            await self._login(manager, lost)
            self.state.ami_connected = True
            if self.sessions:
                self.state.ami_reconnects += 1
                log.info("AMI %s: reconnected as %s", self.address, self.config.ami_user)
            else:
                log.info("AMI %s: connected as %s", self.address, self.config.ami_user)
            self.sessions += 1
            self._manager = manager
            await self._follow(manager, lost)
        finally:
            self._manager = None
            self.state.ami_connected = False
            self.state.synced = False
            self.state.calls_lost_sight()
            self._buffer = None
            manager.close()

    async def _login(self, manager: Any, lost: asyncio.Future[object]) -> None:
        login = manager.authenticated_future
        if login is None:  # connection_made has not run yet
            await asyncio.sleep(0)
            login = manager.authenticated_future
        if login is None:
            raise AmiDisconnected("no login was sent")
        response = await self._race(asyncio.wait_for(login, self.config.action_timeout), lost)
        if not getattr(response, "success", False):
            raise AmiLoginError(header(response, "Message") or "no reason given")

    async def _follow(self, manager: Any, lost: asyncio.Future[object]) -> None:
        """Sync, then wait for a reason to sync again, until the connection is lost."""
        assert self._resync is not None  # set by session()
        while True:
            wait = self.config.resync_interval
            try:
                await self._race(self.sync(manager), lost)
            except ActionError as exc:
                wait = min(SYNC_RETRY, self.config.resync_interval)
                log.warning("AMI %s: state sync failed (%s); retrying in %.0f s", self.address, exc, wait)
            resync = asyncio.ensure_future(self._resync.wait())
            try:
                waiters: set[asyncio.Future[Any]] = {lost, resync}
                await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                resync.cancel()
            if lost.done():
                raise AmiDisconnected(describe_loss(lost.result()))

    async def _race(self, awaitable: Awaitable[T], lost: asyncio.Future[object]) -> T:
        """``awaitable``'s result, or AmiDisconnected as soon as the connection is lost."""
        task = asyncio.ensure_future(awaitable)
        waiters: set[asyncio.Future[Any]] = {task, lost}
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled from outside: take the inner work down too
            task.cancel()
            raise
        if task not in done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise AmiDisconnected(describe_loss(lost.result()))
        return task.result()

    # ---------------------------------------------------------------- state rebuilt from actions

    async def _action(self, manager: Any, name: str) -> Any:
        return await self._send(manager, {"Action": name})

    async def sync(self, manager: Any) -> None:
        """Rebuild the AMI half of the state from actions; events seen meanwhile are applied again after."""
        if self._resync is not None:
            self._resync.clear()
        self._buffer = []
        try:
            contacts = contacts_from_show_contacts(await self._action(manager, "PJSIPShowContacts"))
            outbound = await self._action(manager, "PJSIPShowRegistrationsOutbound")
            registrations = registrations_from_show_outbound(outbound)
            self.registration_objects = registration_objects_from_show_outbound(outbound)
            channels = channels_from_show_channels(await self._action(manager, "CoreShowChannels"))
        finally:
            buffered, self._buffer = self._buffer or [], None
        now = self.clock()
        for contact_change in self.state.replace_contacts(contacts):
            self.emit(to_log_event(contact_change, self.state.mode, now, source=f"{SOURCE_ASTERISK}-sync"))
        for registry_change in self.state.replace_registrations(registrations):
            self.emit(to_log_event(registry_change, self.state.mode, now, source=f"{SOURCE_STATIC}-sync"))
        call_events: list[CallEvent] = []
        for change in buffered:  # newer than the snapshot, or as old: either way still true
            if isinstance(change, ContactChange):
                self.state.apply_contact(change)
            elif isinstance(change, RegistryChange):
                self.state.apply_registry(change, count=False)
            else:
                call_events.append(change)
        revealed = self.state.replace_calls(channels, call_events)
        for call_change in revealed:
            self.emit(call_change.log_event(self.state.mode, now, source=f"{SOURCE_CALLS}-sync"))
        unannounced = any(change.event == CALL_STARTED for change in revealed)
        if unannounced and self._synced_once_this_session and not self._warned_call_events:
            # Connected all along, yet a call was answered without a DialEnd: the call events do not come.
            self._warned_call_events = True
            log.warning(
                "AMI %s: CoreShowChannels found an answered call no DialEnd announced: the AMI user "
                "needs read=call in manager.conf for call events (attempts and failures are not counted)",
                self.address,
            )
        self.state.synced = True
        self._synced_once_this_session = True
        counts = self.state.counts(now)
        log.info(
            "AMI %s: state synced: %d DN(s) with a contact at Asterisk, %d static registration(s), "
            "%d bound at Genesys (%s mode), %d call(s) in progress",
            self.address,
            counts.registered_asterisk,
            len(self.state.registrations),
            counts.bound_genesys,
            self.state.mode,
            len(self.state.calls_in_progress()),
        )

    # ---------------------------------------------------------------- static registrations sent again

    async def register_static(self, rate: float) -> tuple[int, int]:
        """``PJSIPRegister`` for every static registration, ``rate`` per second (in tenths of a second).

        For a Genesys that answers again after it stopped: it may hold none of the bindings, and
        Asterisk would not send them before each one's refresh. Asterisk's PJSIPRegister first
        un-REGISTERs, then REGISTERs: a DN whose binding Genesys kept is unbound for one round trip.
        Returns (sent, refused). Nothing is sent while AMI is not logged in (the next sync shows
        the registrations as Asterisk has them; Asterisk's own retries go on).
        """
        manager, names = self._manager, sorted(self.registration_objects.values())
        if manager is None or not names:
            if names:
                log.warning("AMI %s: not logged in: %d static registration(s) not sent again", self.address, len(names))
            return 0, 0
        started = self.clock()
        batch = max(1, int(rate / 10))
        refused: list[str] = []
        for first in range(0, len(names), batch):
            if first:
                await self.sleep(0.1)
            chunk = names[first : first + batch]
            answers = await asyncio.gather(
                *(self._send(manager, {"Action": "PJSIPRegister", "Registration": name}) for name in chunk),
                return_exceptions=True,
            )
            refused += [name for name, answer in zip(chunk, answers, strict=True) if not _succeeded(answer)]
        log.info(
            "AMI %s: %d static registration(s) sent again at %g/s in %.1f s%s",
            self.address,
            len(names),
            rate,
            self.clock() - started,
            f"; refused: {', '.join(refused[:10])}{' ...' if len(refused) > 10 else ''}" if refused else "",
        )
        return len(names), len(refused)

    async def _send(self, manager: Any, action: dict[str, str]) -> Any:
        return await asyncio.wait_for(manager.send_action(action), self.config.action_timeout)

    # ---------------------------------------------------------------- events

    def _request_resync(self) -> None:
        if self._resync is not None:
            self._resync.set()

    def _on_event(self, _manager: Any, message: Any) -> None:
        """panoramisk callback: runs in the event loop, in the order AMI sent the events."""
        try:
            self.handle_event(message)
        except Exception:
            log.exception("AMI event could not be handled: %s", event_name(message) or "?")

    def handle_event(self, message: Mapping[str, Any]) -> None:
        name = event_name(message)
        if name == "FullyBooted":
            self._request_resync()
            return
        if name == "Reload":
            module = header(message, "Module")
            if not module or module.startswith("res_pjsip") or module.lower() == "all":
                asyncio.get_running_loop().call_later(RELOAD_SETTLE, self._request_resync)
            return
        call_event = parse_call_event(message)
        if call_event is not None:
            now = self.clock()
            for call_change in self.state.apply_call_event(call_event):
                self.emit(call_change.log_event(self.state.mode, now))
            if self._buffer is not None:
                self._buffer.append(call_event)
            return
        change = parse_change(message)
        if change is None:
            return
        if isinstance(change, ContactChange):
            self.state.apply_contact(change)
        else:
            self.state.apply_registry(change)
        if self._buffer is not None:
            self._buffer.append(change)
        self.emit(to_log_event(change, self.state.mode, self.clock()))
