"""HTTP endpoints: /healthz, /metrics (Prometheus) and /state (JSON for the switch playbooks).

Metric names are stable (dashboards and alerts use them):

  webrtc_directory_numbers_registered_asterisk   DNs with at least one contact at Asterisk
  webrtc_directory_numbers_bound_genesys         DNs bound at Genesys through the active mode
  webrtc_directory_numbers_unbound_genesys       registered at Asterisk but not bound at Genesys (page on > 0)
  webrtc_forwarding_failures_total{reason}       failed REGISTERs at Genesys seen by the monitor
                                          (Kamailio: SIP code, "timeout", "not_sent"; static: "rejected")
  webrtc_forwarding_attempts_total{path}         REGISTERs at Genesys whose answer the monitor saw
                                          (path: static or kamailio; failure ratio = failures / attempts)
  webrtc_monitor_ami_connected            1 while logged in to Asterisk's AMI
  webrtc_monitor_ami_reconnects_total     AMI sessions re-established after a loss
  webrtc_monitor_state_synced             1 once the state was rebuilt from AMI actions in this session
  webrtc_monitor_mode{mode}               1 for the active mode, 0 for the other
  webrtc_monitor_kamailio_reachable       kamailio mode only: 1 while Kamailio's JSON-RPC answers
  webrtc_monitor_genesys_answering        static mode, once probed: 1 while Genesys answers the monitor's
                                          OPTIONS below 500 (Kamailio mode: Kamailio's log says it)
  webrtc_calls_in_progress{direction}     answered calls between an agent and Genesys not ended yet
                                          (direction: inbound = Genesys -> agent, outbound = agent -> Genesys)
  webrtc_call_attempts_total{direction}   calls seen being set up (once per call)
  webrtc_call_setup_failures_total{direction,reason}
                                          set-ups that failed: reason = DialStatus in lower case (busy,
                                          noanswer, cancel, ...), or rejected_number / chanunavail /
                                          cause_<n> for a call the dialplan ended before Dial()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .state import DIRECTIONS, KNOWN_FAILURE_REASONS, MonitorState


class StateCollector(Collector):
    """Reads the state at every scrape (a binding that ran out is unbound without any event)."""

    def __init__(self, state: MonitorState, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        state = self.state
        counts = state.counts(self.clock())
        yield GaugeMetricFamily(
            "webrtc_directory_numbers_registered_asterisk",
            "DNs with at least one contact registered at Asterisk",
            value=counts.registered_asterisk,
        )
        yield GaugeMetricFamily(
            "webrtc_directory_numbers_bound_genesys",
            "DNs bound at Genesys through the active mode",
            value=counts.bound_genesys,
        )
        yield GaugeMetricFamily(
            "webrtc_directory_numbers_unbound_genesys",
            "DNs registered at Asterisk but not bound at Genesys",
            value=counts.unbound_genesys,
        )
        failures = CounterMetricFamily(
            "webrtc_forwarding_failures",
            "Failed registrations at Genesys seen by the monitor, by reason (SIP code, timeout, not_sent, rejected)",
            labels=["reason"],
        )
        for reason, count in sorted(state.failures.items()):
            failures.add_metric([reason], count)
        yield failures
        attempts = CounterMetricFamily(
            "webrtc_forwarding_attempts",
            "Registrations at Genesys whose answer the monitor saw, by path"
            " (static: Asterisk's own, kamailio: forwarded)",
            labels=["path"],
        )
        for path in ("static", "kamailio"):
            attempts.add_metric([path], state.attempts[path])
        yield attempts
        yield GaugeMetricFamily(
            "webrtc_monitor_ami_connected",
            "1 while the monitor is logged in to Asterisk's AMI",
            value=state.ami_connected,
        )
        yield CounterMetricFamily(
            "webrtc_monitor_ami_reconnects", "AMI sessions re-established after a loss", value=state.ami_reconnects
        )
        yield GaugeMetricFamily(
            "webrtc_monitor_state_synced",
            "1 once the state was rebuilt from AMI actions in the current session",
            value=state.synced,
        )
        mode = GaugeMetricFamily(
            "webrtc_monitor_mode", "Active registration mode (1 for the mode in use)", labels=["mode"]
        )
        for name in ("kamailio", "static"):
            mode.add_metric([name], int(name == state.mode))
        yield mode
        if state.mode == "kamailio":
            yield GaugeMetricFamily(
                "webrtc_monitor_kamailio_reachable",
                "1 while Kamailio's JSON-RPC answers htable.dump",
                value=bool(state.kamailio_reachable),
            )
        if state.mode == "static" and state.genesys_answering is not None:
            yield GaugeMetricFamily(
                "webrtc_monitor_genesys_answering",
                "1 while Genesys answers the monitor's OPTIONS probe below 500",
                value=state.genesys_answering,
            )
        yield from self.collect_calls()

    def collect_calls(self) -> Iterable[Metric]:
        state = self.state
        in_progress = GaugeMetricFamily(
            "webrtc_calls_in_progress",
            "Answered calls between an agent and Genesys, not ended yet, by direction",
            labels=["direction"],
        )
        for direction, count in state.calls_by_direction().items():
            in_progress.add_metric([direction], count)
        yield in_progress
        attempts = CounterMetricFamily(
            "webrtc_call_attempts",
            "Calls between an agent and Genesys seen being set up, by direction",
            labels=["direction"],
        )
        for direction in DIRECTIONS:
            attempts.add_metric([direction], state.call_attempts[direction])
        yield attempts
        failures = CounterMetricFamily(
            "webrtc_call_setup_failures",
            "Call set-ups that failed, by direction and reason (DialStatus, or the refusal before Dial)",
            labels=["direction", "reason"],
        )
        known = {(direction, reason) for direction in DIRECTIONS for reason in KNOWN_FAILURE_REASONS}
        for direction, reason in sorted(known | set(state.call_failures)):
            failures.add_metric([direction, reason], state.call_failures[(direction, reason)])
        yield failures


def build_registry(state: MonitorState, clock: Callable[[], float] = time.time) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state, clock))
    return registry


def health(state: MonitorState, now: float) -> tuple[int, dict[str, Any]]:
    """200 while AMI is connected, else 503; with a small JSON body."""
    body: dict[str, Any] = {
        "status": "ok" if state.ami_connected else "ami disconnected",
        "ami_connected": state.ami_connected,
        "synced": state.synced,
        "mode": state.mode,
        "counts": state.counts(now).as_dict(),
    }
    if state.mode == "kamailio":
        body["kamailio_reachable"] = state.kamailio_reachable
    return (200 if state.ami_connected else 503), body


def create_app(
    state: MonitorState, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time
) -> web.Application:
    metrics_registry = registry if registry is not None else build_registry(state, clock)

    async def healthz(_request: web.Request) -> web.Response:
        status, body = health(state, clock())
        return web.json_response(body, status=status)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics_registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def state_document(_request: web.Request) -> web.Response:
        return web.json_response(state.snapshot(clock()))

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/state", state_document)
    return app


async def start_http(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on host:port (port 0: any free port, see ``bound_port``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])
