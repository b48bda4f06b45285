"""Entry point: python3 -m registration_monitor --config monitor.json.

stdout: one JSON line per registration event and per call event (started, ended, failed). stderr:
the monitor's own log (connections, reconnects, syncs). The AMI secret is never logged: it is
masked in the Config object and every log record passes a filter that blanks it, whatever library
wrote the record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from . import __version__
from .ami import AmiClient
from .config import Config, ConfigError, Secret, load_config
from .events import LogEvent
from .genesys import GenesysProbe
from .http import create_app, start_http
from .kamailio import KamailioPoller
from .state import MonitorState

log = logging.getLogger("registration_monitor")


class RedactSecret(logging.Filter):
    """Replaces the secret in every record's final message (and drops its arguments)."""

    def __init__(self, secret: Secret) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        value = self._secret.reveal()
        if not value:
            return True
        message = record.getMessage()
        if value in message:
            record.msg = message.replace(value, "********")
            record.args = None
        if record.exc_info and value in logging.Formatter().formatException(record.exc_info):
            record.exc_info = None
            record.msg = f"{record.msg} (traceback withheld: it holds the AMI secret)"
        return True


def print_event(event: LogEvent) -> None:
    print(event.to_json(), flush=True)


def setup_logging(secret: Secret | None = None, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if secret is not None:
        handler.addFilter(RedactSecret(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # panoramisk logs every message it reads at debug level; keep it to warnings.
    logging.getLogger("registration_monitor.panoramisk").setLevel(logging.WARNING)
    logging.getLogger("panoramisk").setLevel(logging.WARNING)


async def run(config: Config, emit: Callable[[LogEvent], None] = print_event) -> None:
    state = MonitorState(config.mode, config.dns)
    runner = await start_http(create_app(state), config.listen_address, config.listen_port)
    log.info("registration monitor %s: %s", __version__, config.describe())
    poller = KamailioPoller(
        config.kamailio_rpc_url, config.poll_interval, state, emit, expected=config.mode == "kamailio"
    )
    ami = AmiClient(config, state, emit)
    jobs: list[Coroutine[Any, Any, None]] = [ami.run(), poller.run()]
    if config.mode == "static" and config.genesys_address:

        def answering(now: bool) -> None:
            state.genesys_answering = now

        probe = GenesysProbe(
            (config.genesys_address, config.genesys_port),
            config.listen_address,
            domain=config.genesys_domain,
            interval=config.genesys_probe_interval,
            on_back=lambda: ami.register_static(config.reassert_rate),
            on_change=answering,
        )
        jobs.append(probe.run())
    tasks = [asyncio.ensure_future(job) for job in jobs]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            failure = None if task is stopper else task.exception()
            if failure is not None:  # a job never ends but by failing
                raise failure
        log.info("stopping")
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="registration_monitor", description="Registration monitor of the WebRTC gateway"
    )
    parser.add_argument("--config", type=Path, required=True, help="monitor.json rendered by the role")
    parser.add_argument("--debug", action="store_true", help="log at debug level (never the secret)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        log.error("registration-monitor: %s", exc)
        return 2
    setup_logging(config.ami_secret, logging.DEBUG if args.debug else logging.INFO)
    try:
        asyncio.run(run(config))
    except OSError as exc:
        log.error("registration-monitor: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
