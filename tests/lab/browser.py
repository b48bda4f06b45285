"""WebRTC calls from a real browser: headless Chromium (Debian's) driven by Playwright, JsSIP in the page.

    with Browser() as browser:
        alice = browser.new_phone("1002", DN_PASSWORDS["1002"])
        bob = browser.new_phone("1003", DN_PASSWORDS["1003"], auto_answer="answer")
        alice.wait_registered()
        bob.wait_registered()
        mark = alice.call("1003")
        alice.wait_event("confirmed", since=mark, fail_on=("failed", "ended"))
        stats = alice.wait_media(min_packets=50)

Each phone is one page in its own browser context (one DN per page). The page is not fetched from
the network: `page.route` answers https://<gateway>:<nginx port>/phone/* with an inline HTML page and
the esbuild bundle of tests/clients/browser/phone.js (`make clients`), so the page has the gateway's
https origin (a secure context, so navigator.mediaDevices exists, and the Origin nginx allows) while
its WebSocket goes to the real wss endpoint. Audio comes from Chromium's fake capture device.

Threading: Playwright's sync API is bound to the thread that started it (it runs its own event loop
in greenlets). Create, use and close a Browser and all of its Phones from one thread; do not share
them with worker threads or use them from inside an asyncio event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import BrowserContext, Page, Playwright, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from lab import GATEWAY, LAB_VARS, ROOT, WSS_URL, assert_loopback

CHROMIUM = "/usr/bin/chromium"
PHONE_JS = ROOT / "tests/clients/browser/phone.js"
BUNDLE = ROOT / "tests/clients/browser/dist/phone.bundle.js"
ORIGIN = f"https://{GATEWAY}:{LAB_VARS['nginx_listen_port']}"
PAGE_PATH = "/phone/index.html"
REALM = "webrtc-genesys"  # roles/asterisk asterisk_realm; JsSIP takes the challenge's realm when None

AutoAnswer = Literal["answer", "reject", "none"]

CHROMIUM_ARGS: tuple[str, ...] = (
    "--use-fake-device-for-media-stream",  # a synthetic microphone (beeps)
    "--use-fake-ui-for-media-stream",  # grant getUserMedia without a prompt
    "--ignore-certificate-errors",  # the lab's self-signed certificate, for the wss socket
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # remote audio plays without a click
    "--allow-loopback-in-peer-connection",  # ICE host candidates on lo: the lab is loopback only
    # The page is a routed https origin whose WebSocket goes to a loopback address: no Local Network
    # Access / Private Network Access blocks. Host candidates as real addresses, not mDNS names.
    "--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets,"
    "BlockInsecurePrivateNetworkRequests,WebRtcHideLocalIpsWithMdns",
)

PAGE_HTML = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>webrtc-genesys phone</title><link rel="icon" href="data:,"></head>
<body>
<audio id="remote" autoplay></audio>
<script src="phone.bundle.js"></script>
</body>
</html>
"""

Event = dict[str, Any]


def _loopback_url(url: str, schemes: Sequence[str]) -> str:
    """The URL's host after checking the scheme and that the host is a loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected a {'/'.join(schemes)} URL, got {url!r}")
    assert_loopback(parts.hostname)
    return parts.hostname


def _format_events(events: Sequence[Event], last: int = 15) -> str:
    tail = events[-last:]
    skipped = len(events) - len(tail)
    lines = [
        f"  [{skipped + i}] {e.get('type')} {json.dumps(e.get('detail', {}), sort_keys=True)}"
        for i, e in enumerate(tail)
    ]
    head = f"  ... {skipped} earlier events\n" if skipped else ""
    return head + ("\n".join(lines) if lines else "  (no events)")


class Browser:
    """One headless Chromium for a test; phones are pages in their own contexts. A context manager."""

    def __init__(
        self,
        *,
        executable: str = CHROMIUM,
        bundle: Path = BUNDLE,
        extra_args: Sequence[str] = (),
        slow_mo_ms: float | None = None,
        share_with: Browser | None = None,
    ) -> None:
        """share_with: another started Browser whose Playwright this one uses (Playwright's sync
        API runs one instance per thread), for a second Chromium in the same test."""
        self.executable = executable
        self._share_with = share_with
        self.bundle = bundle
        self.args = (*CHROMIUM_ARGS, *extra_args)
        self.slow_mo_ms = slow_mo_ms
        self.phones: list[Phone] = []
        self._playwright: Playwright | None = None
        self._browser: PlaywrightBrowser | None = None
        self._bundle_text: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Launch Chromium (a fresh temporary profile: launch() makes and removes its user-data-dir)."""
        if self._browser is not None:
            return
        reason = unavailable_reason(self.executable, self.bundle)
        if reason is not None:
            raise RuntimeError(reason)
        self._bundle_text = self.bundle.read_text()
        shared = self._share_with._playwright if self._share_with else None
        playwright = shared or sync_playwright().start()
        self._playwright = playwright
        try:
            self._browser = playwright.chromium.launch(
                executable_path=self.executable, headless=True, args=list(self.args), slow_mo=self.slow_mo_ms
            )
        except BaseException:
            if shared is None:
                playwright.stop()
            self._playwright = None
            raise

    def close(self) -> None:
        """Close every phone (unregistering it), then the browser and Playwright. Idempotent."""
        for phone in list(self.phones):
            with contextlib.suppress(PlaywrightError):  # the browser may already be gone
                phone.close()
        self.phones.clear()
        if self._browser is not None:
            try:
                self._browser.close()
            finally:
                self._browser = None
        if self._playwright is not None:
            if self._share_with is None:
                self._playwright.stop()
            self._playwright = None

    @property
    def version(self) -> str:
        return self._require_browser().version

    def _require_browser(self) -> PlaywrightBrowser:
        if self._browser is None:
            raise RuntimeError("Browser not started: use it as a context manager (with Browser() as b)")
        return self._browser

    # ---- phones ----------------------------------------------------------------------------
    def open_phone(self, *, origin: str = ORIGIN) -> Phone:
        """A page on `origin` with window.phone loaded but not started (no SIP, no socket yet)."""
        _loopback_url(origin, ("https",))
        origin = origin.rstrip("/")
        browser = self._require_browser()
        context = browser.new_context(ignore_https_errors=True)
        bundle = self._bundle_text or ""

        def serve(route: Route) -> None:
            path = urlsplit(route.request.url).path
            if path == PAGE_PATH:
                route.fulfill(status=200, content_type="text/html; charset=utf-8", body=PAGE_HTML)
            elif path == "/phone/phone.bundle.js":
                route.fulfill(status=200, content_type="application/javascript; charset=utf-8", body=bundle)
            else:  # nothing else of the origin may reach the network (favicon, typos)
                route.fulfill(status=404, content_type="text/plain", body="not served by tests/lab/browser.py")

        try:
            context.grant_permissions(["microphone"], origin=origin)
            page = context.new_page()
            phone = Phone(self, context, page, origin)
            page.route(f"{origin}/**", serve)
            page.goto(f"{origin}{PAGE_PATH}", wait_until="load")
            page.wait_for_function("() => window.phone && window.phone.ready === true", timeout=10_000)
        except BaseException:
            context.close()
            raise
        self.phones.append(phone)
        return phone

    def new_phone(
        self,
        dn: str,
        password: str,
        *,
        url: str = WSS_URL,
        auto_answer: AutoAnswer = "answer",
        expires: int = 600,
        realm: str | None = None,
        answer_delay_ms: int = 0,
        origin: str | None = None,
    ) -> Phone:
        """Open a phone page and start its UA (it registers at once). Origin: the URL's https twin."""
        host = _loopback_url(url, ("wss", "ws"))
        if origin is None:
            origin = ORIGIN if url == WSS_URL else f"https://{urlsplit(url).netloc or host}"
        phone = self.open_phone(origin=origin)
        try:
            phone.start(
                dn,
                password,
                url=url,
                auto_answer=auto_answer,
                expires=expires,
                realm=realm,
                answer_delay_ms=answer_delay_ms,
            )
        except BaseException:
            phone.close()
            raise
        return phone


class Phone:
    """A JsSIP phone in one page. Methods call window.phone in the page (tests/clients/browser/phone.js)."""

    def __init__(self, browser: Browser, context: BrowserContext, page: Page, origin: str) -> None:
        self.browser = browser
        self.context = context
        self.page = page
        self.origin = origin
        self.dn: str | None = None
        self.page_errors: list[str] = []
        self._start_mark = 0
        self._closed = False
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", lambda msg: self.page_errors.append(msg.text) if msg.type == "error" else None)

    def __repr__(self) -> str:
        return f"Phone(dn={self.dn!r}, origin={self.origin!r})"

    # ---- page calls ------------------------------------------------------------------------
    def js(self, expression: str, arg: Any = None) -> Any:
        """Evaluate a function expression in the page, e.g. js("(d) => phone.call(d)", "1003")."""
        try:
            return self.page.evaluate(expression, arg)
        except PlaywrightError as error:
            raise AssertionError(f"{self}: {expression} failed: {error.message}\n{self._diagnostics()}") from error

    def start(
        self,
        dn: str,
        password: str,
        *,
        url: str = WSS_URL,
        auto_answer: AutoAnswer = "answer",
        expires: int = 600,
        realm: str | None = None,
        answer_delay_ms: int = 0,
    ) -> dict[str, Any]:
        """Create and start the UA (register: true). Never fails on network errors: see events()."""
        _loopback_url(url, ("wss", "ws"))
        self.dn = dn
        self._start_mark = self.mark()
        options = {
            "url": url,
            "dn": dn,
            "password": password,
            "realm": realm,
            "expires": expires,
            "autoAnswer": auto_answer,
            "answerDelayMs": answer_delay_ms,
        }
        state: dict[str, Any] = self.js("(o) => phone.start(o)", options)
        return state

    def state(self) -> dict[str, Any]:
        """{started, connected, registered, sessionStatus, direction, established, ended, onHold, muted, events}."""
        state: dict[str, Any] = self.js("() => phone.state()")
        return state

    def events(self, since: int = 0) -> list[Event]:
        """The recorded events [{t, type, detail}], from index `since`."""
        events: list[Event] = self.js("(since) => phone.events.slice(since)", since)
        return events

    def mark(self) -> int:
        """The index the next event will get: pass it as `since` to wait for events after now."""
        count: int = self.js("() => phone.events.length")
        return count

    # ---- waits -----------------------------------------------------------------------------
    def wait_event(
        self,
        type: str,
        timeout: float = 10,
        since: int = 0,
        *,
        match: Mapping[str, Any] | None = None,
        fail_on: Iterable[str] = (),
    ) -> Event:
        """The first event of `type` at index >= since whose detail contains `match`.

        Fails at once when an event of a type in `fail_on` comes first (e.g. "failed" while waiting for
        "confirmed"), and after `timeout` seconds; the message lists the last events.
        """
        query = """([type, since, match, failOn]) => {
            const events = window.phone.events;
            for (let i = since; i < events.length; i += 1) {
                const e = events[i];
                if (failOn.includes(e.type)) return { index: i, failed: true, event: e };
                if (e.type !== type) continue;
                if (Object.entries(match).every(([k, v]) => JSON.stringify(e.detail[k]) === JSON.stringify(v))) {
                    return { index: i, failed: false, event: e };
                }
            }
            return null;
        }"""
        arg = [type, since, dict(match or {}), list(fail_on)]
        try:
            handle = self.page.wait_for_function(query, arg=arg, timeout=timeout * 1000, polling=100)
        except PlaywrightTimeoutError:
            raise AssertionError(
                f"{self}: no {type!r} event{f' matching {dict(match)}' if match else ''} since [{since}] "
                f"within {timeout}s\n{self._diagnostics()}"
            ) from None
        found: dict[str, Any] = handle.json_value()
        if found["failed"]:
            got = f"{found['event']['type']!r} at [{found['index']}]"
            raise AssertionError(f"{self}: {got} while waiting for {type!r}\n{self._diagnostics()}")
        event: Event = found["event"]
        return event

    def wait_registered(self, timeout: float = 10) -> Event:
        """Wait for 'registered' since start(); fail at once on 'registrationFailed'."""
        return self.wait_event("registered", timeout, since=self._start_mark, fail_on=("registrationFailed",))

    # ---- calls -----------------------------------------------------------------------------
    def call(self, target: str) -> int:
        """Call sip:<target>@<gateway> (or a full sip: URI) with audio; return the mark before the call."""
        mark = self.mark()
        self.js("(t) => phone.call(t)", target)
        return mark

    def answer(self) -> None:
        self.js("() => phone.answer()")

    def hangup(self) -> bool:
        """Terminate the session (CANCEL, reject or BYE as JsSIP sees fit); False when there is none."""
        ended: bool = self.js("() => phone.hangup()")
        return ended

    def hold(self, timeout: float = 10) -> None:
        """Put the call on hold and wait for the re-INVITE to succeed ('holdDone')."""
        mark = self.mark()
        if not self.js("() => phone.hold()"):
            raise AssertionError(f"{self}: JsSIP refused hold() in state {self.state()}\n{self._diagnostics()}")
        self.wait_event("holdDone", timeout, since=mark, fail_on=("ended", "failed"))

    def unhold(self, timeout: float = 10) -> None:
        """Resume the call and wait for the re-INVITE to succeed ('unholdDone')."""
        mark = self.mark()
        if not self.js("() => phone.unhold()"):
            raise AssertionError(f"{self}: JsSIP refused unhold() in state {self.state()}\n{self._diagnostics()}")
        self.wait_event("unholdDone", timeout, since=mark, fail_on=("ended", "failed"))

    def send_dtmf(self, digits: str, duration_ms: int = 100, inter_tone_gap_ms: int = 70) -> None:
        """RFC 4733 telephone-events in the RTP stream; each tone played is recorded as 'dtmfSent'."""
        self.js(
            "([d, duration, gap]) => phone.sendDtmf(d, { duration, interToneGap: gap })",
            [digits, duration_ms, inter_tone_gap_ms],
        )

    # ---- media -----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Audio stats of the session's RTCPeerConnection: packetsSent, packetsReceived, bytesReceived,
        audioLevel, codec, dtlsState, iceState, selectedCandidatePair (and a few more)."""
        stats: dict[str, Any] = self.js("() => phone.stats()")
        return stats

    def wait_media(self, min_packets: int = 50, timeout: float = 10) -> dict[str, Any]:
        """Sample stats() every 200 ms until packets sent and received both exceed min_packets and rise."""
        deadline = time.monotonic() + timeout
        previous: dict[str, Any] | None = None
        history: list[tuple[int, int]] = []
        while True:
            current = self.stats()
            history.append((current["packetsSent"], current["packetsReceived"]))
            if (
                previous is not None
                and current["packetsSent"] > min_packets
                and current["packetsReceived"] > min_packets
                and current["packetsSent"] > previous["packetsSent"]
                and current["packetsReceived"] > previous["packetsReceived"]
            ):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self}: no two-way audio within {timeout}s (need > {min_packets} packets each way, rising); "
                    f"(sent, received) samples: {history[-5:]}\nlast stats: {json.dumps(current, sort_keys=True)}\n"
                    f"{self._diagnostics()}"
                )
            previous = current
            time.sleep(0.2)

    def start_loopback(self) -> dict[str, Any]:
        """Audio between two RTCPeerConnections inside the page (no SIP, no network): a self-test of the
        browser, its fake microphone and getStats. While no call exists, stats()/wait_media() report it."""
        result: dict[str, Any] = self.js("() => phone.startLoopback()")
        return result

    def stop_loopback(self) -> None:
        self.js("() => phone.stopLoopback()")

    # ---- the end ---------------------------------------------------------------------------
    def unregister(self, timeout_ms: int = 3000) -> bool:
        """REGISTER with Expires: 0; True when the registrar confirmed it."""
        done: bool = self.js("(ms) => phone.unregister(ms)", timeout_ms)
        return done

    def close(self) -> None:
        """Unregister (when registered), stop the UA and close the page and its context. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self.page.is_closed():
                self.page.evaluate("async () => { await phone.unregister(); phone.stop(); }")
        except PlaywrightError:
            pass  # page or browser already gone: nothing left to unregister from here
        finally:
            try:
                self.context.close()
            finally:
                if self in self.browser.phones:
                    self.browser.phones.remove(self)

    def drop(self) -> None:
        """Close the page without unregistering: the agent's app crashed or lost its network."""
        if self._closed:
            return
        self._closed = True
        try:
            self.context.close()
        finally:
            if self in self.browser.phones:
                self.browser.phones.remove(self)

    def _diagnostics(self) -> str:
        try:
            events = self.page.evaluate("() => phone.events") if not self.page.is_closed() else []
        except PlaywrightError as error:
            return f"events unavailable: {error.message}"
        text = f"last events:\n{_format_events(events)}"
        if self.page_errors:
            text += "\npage errors:\n" + "\n".join(f"  {line}" for line in self.page_errors[-5:])
        return text


def unavailable_reason(executable: str = CHROMIUM, bundle: Path = BUNDLE) -> str | None:
    """Why a browser phone cannot run here (None: it can)."""
    if shutil.which(executable) is None:
        return f"{executable} not found (apt-get install chromium, or make host)"
    shown = bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle
    if not bundle.is_file():
        return f"{shown} missing (make clients)"
    if bundle == BUNDLE and PHONE_JS.stat().st_mtime > bundle.stat().st_mtime:
        return f"{shown} is older than {PHONE_JS.relative_to(ROOT)} (make clients)"
    return None


def browser_tests_mark() -> Any:
    """The skip mark of a module of browser tests: a skip where no browser can run, but where
    the run requires one (WEBRTC_REQUIRE_BROWSER=1, as `make test` and CI set) a collection
    error instead, so that the browser tests can never pass by being skipped."""
    reason = unavailable_reason()
    if reason is not None and os.environ.get("WEBRTC_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"browser tests required (WEBRTC_REQUIRE_BROWSER=1) but unavailable: {reason}")
    return pytest.mark.skipif(reason is not None, reason=str(reason))
