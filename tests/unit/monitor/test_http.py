"""/healthz, /metrics and /state, served by aiohttp (TestServer/TestClient, or a real socket on 127.0.0.1:0)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest
from registration_monitor.http import bound_port, build_registry, create_app, start_http
from registration_monitor.state import MonitorState

from .captured import CALL_FIXTURES, feed, feed_calls, fixture_time, forwarded

STABLE_NAMES = (
    "webrtc_directory_numbers_registered_asterisk",
    "webrtc_directory_numbers_bound_genesys",
    "webrtc_directory_numbers_unbound_genesys",
    "webrtc_forwarding_failures_total",
    "webrtc_forwarding_attempts_total",
    "webrtc_monitor_ami_connected",
    "webrtc_calls_in_progress",
    "webrtc_call_attempts_total",
    "webrtc_call_setup_failures_total",
)
NOW = float(fixture_time("04-register-1002.htable.json") + 1)


def kamailio_state() -> MonitorState:
    """1002 and 1003 registered at Asterisk; 1002 bound at Genesys through Kamailio, 1003 rejected (403)."""
    state = MonitorState("kamailio", ["1002", "1003"])
    feed(state, "04-register-1002.ami")
    feed(state, "08-register-1003.ami")
    state.replace_forwarded({})
    state.replace_forwarded({**forwarded("08-register-1003.htable.json"), **forwarded("04-register-1002.htable.json")})
    state.kamailio_reachable = True
    return state


def samples(exposition: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def get(app_state: MonitorState, path: str) -> tuple[int, str, str]:
    async with TestClient(TestServer(create_app(app_state, clock=lambda: NOW))) as client:
        response = await client.get(path)
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def test_metrics_exposition_has_the_stable_names_and_values() -> None:
    state = kamailio_state()
    state.ami_connected = True
    status, content_type, text = asyncio.run(get(state, "/metrics"))
    assert status == 200
    assert content_type.startswith("text/plain")
    for name in STABLE_NAMES:
        kind = "counter" if name.endswith("_total") else "gauge"
        assert re.search(rf"^# TYPE {name} {kind}$", text, re.MULTILINE), name
    values = samples(text)
    assert values["webrtc_directory_numbers_registered_asterisk"] == 2
    assert values["webrtc_directory_numbers_bound_genesys"] == 1
    assert values["webrtc_directory_numbers_unbound_genesys"] == 1
    assert values['webrtc_forwarding_failures_total{reason="403"}'] == 1
    # two forwarded answers seen after the baseline: 1002's 200 and 1003's 403 (failure ratio 1/2)
    assert values['webrtc_forwarding_attempts_total{path="kamailio"}'] == 2
    assert values['webrtc_forwarding_attempts_total{path="static"}'] == 0
    assert values["webrtc_monitor_ami_connected"] == 1
    assert values['webrtc_monitor_mode{mode="kamailio"}'] == 1
    assert values['webrtc_monitor_mode{mode="static"}'] == 0  # one 0/1 series per mode, for alerts on a change
    assert values["webrtc_monitor_kamailio_reachable"] == 1


def call_fixture(name: str) -> str:
    [match] = [fixture for fixture in CALL_FIXTURES if fixture.split("-", 1)[1] == f"{name}.ami"]
    return match


def test_call_metrics_before_any_call_are_zero_for_both_directions_and_the_known_reasons() -> None:
    values = samples(generate_latest(build_registry(MonitorState("static", ["1002"]), clock=lambda: 0)).decode())
    for direction in ("inbound", "outbound"):
        assert values[f'webrtc_calls_in_progress{{direction="{direction}"}}'] == 0
        assert values[f'webrtc_call_attempts_total{{direction="{direction}"}}'] == 0
        for reason in ("busy", "noanswer", "chanunavail", "congestion", "cancel", "rejected_number"):
            assert values[f'webrtc_call_setup_failures_total{{direction="{direction}",reason="{reason}"}}'] == 0


def test_call_metrics_follow_the_captured_calls() -> None:
    state = MonitorState("kamailio", ["1002", "1003"])
    registry = build_registry(state, clock=lambda: NOW)
    gauge = 'webrtc_calls_in_progress{direction="%s"}'
    feed_calls(state, call_fixture("two-calls-answered"))
    values = samples(generate_latest(registry).decode())
    assert (values[gauge % "inbound"], values[gauge % "outbound"]) == (1, 1)
    feed_calls(state, call_fixture("two-calls-hangup-by-callers"))
    for name in (
        "inbound-busy",
        "inbound-cancel",
        "inbound-agent-offline",
        "outbound-rejected-number",
        "outbound-busy",
    ):
        feed_calls(state, call_fixture(name))
    text = generate_latest(registry).decode()
    values = samples(text)
    assert (values[gauge % "inbound"], values[gauge % "outbound"]) == (0, 0)
    assert values['webrtc_call_attempts_total{direction="inbound"}'] == 4
    assert values['webrtc_call_attempts_total{direction="outbound"}'] == 3
    failures = {
        name: value for name, value in values.items() if name.startswith("webrtc_call_setup_failures_total") and value
    }
    assert failures == {
        'webrtc_call_setup_failures_total{direction="inbound",reason="busy"}': 1,
        'webrtc_call_setup_failures_total{direction="inbound",reason="cancel"}': 1,
        'webrtc_call_setup_failures_total{direction="inbound",reason="chanunavail"}': 1,
        'webrtc_call_setup_failures_total{direction="outbound",reason="rejected_number"}': 1,
        'webrtc_call_setup_failures_total{direction="outbound",reason="busy"}': 1,
    }
    assert re.search(r"^# TYPE webrtc_calls_in_progress gauge$", text, re.MULTILINE)
    assert re.search(r"^# TYPE webrtc_call_setup_failures_total counter$", text, re.MULTILINE)


def test_an_unexpected_failure_reason_is_exposed_too() -> None:
    state = MonitorState("kamailio", ["1002"])
    state.call_failures[("outbound", "cause_34")] += 1
    values = samples(generate_latest(build_registry(state, clock=lambda: 0)).decode())
    assert values['webrtc_call_setup_failures_total{direction="outbound",reason="cause_34"}'] == 1


def test_metrics_follow_the_clock_without_events() -> None:
    state = kamailio_state()
    registry = build_registry(state, clock=lambda: NOW + 3600)  # the forwarded binding ran out
    values = samples(generate_latest(registry).decode())
    assert values["webrtc_directory_numbers_bound_genesys"] == 0
    assert values["webrtc_directory_numbers_unbound_genesys"] == 2


def test_static_mode_exposes_no_kamailio_gauge() -> None:
    state = MonitorState("static", ["1002"])
    feed(state, "11-static-on.ami")
    values = samples(generate_latest(build_registry(state, clock=lambda: 0)).decode())
    assert "webrtc_monitor_kamailio_reachable" not in values
    assert values['webrtc_forwarding_failures_total{reason="rejected"}'] == 1
    assert values["webrtc_directory_numbers_bound_genesys"] == 1
    assert values["webrtc_monitor_ami_connected"] == 0


def test_healthz_is_503_while_ami_is_down_and_200_when_up() -> None:
    state = kamailio_state()
    status, _, body = asyncio.run(get(state, "/healthz"))
    assert status == 503
    down = json.loads(body)
    assert down["ami_connected"] is False and down["status"] == "ami disconnected"
    state.ami_connected = True
    state.synced = True
    status, _, body = asyncio.run(get(state, "/healthz"))
    assert status == 200
    up = json.loads(body)
    assert up == {
        "status": "ok",
        "ami_connected": True,
        "synced": True,
        "mode": "kamailio",
        "kamailio_reachable": True,
        "counts": {"registered_asterisk": 2, "bound_genesys": 1, "unbound_genesys": 1},
    }


def test_state_document_for_the_switch_playbooks() -> None:
    state = kamailio_state()
    state.ami_connected = True
    status, content_type, body = asyncio.run(get(state, "/state"))
    assert status == 200
    assert content_type.startswith("application/json")
    document = json.loads(body)
    assert document["counts"] == {"registered_asterisk": 2, "bound_genesys": 1, "unbound_genesys": 1}
    assert document["dns"] == {
        "1002": {"registered_asterisk": True, "bound_genesys": True, "bound_static": False, "bound_kamailio": True},
        "1003": {"registered_asterisk": True, "bound_genesys": False, "bound_static": False, "bound_kamailio": False},
    }
    assert document["mode"] == "kamailio"
    assert document["calls"] == {
        "in_progress": 0,
        "by_direction": {"inbound": 0, "outbound": 0},
        "by_dn": {"1002": 0, "1003": 0},
    }


def test_unknown_path_is_404() -> None:
    status, _, _ = asyncio.run(get(MonitorState("static"), "/nope"))
    assert status == 404


def _urlopen(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_server_on_a_real_socket() -> None:
    state = MonitorState("static", ["1002"])

    async def scenario() -> list[tuple[int, Any]]:
        runner = await start_http(create_app(state), "127.0.0.1", 0)
        try:
            base = f"http://127.0.0.1:{bound_port(runner)}"
            down = await asyncio.to_thread(_urlopen, f"{base}/healthz")
            state.ami_connected = True
            up = await asyncio.to_thread(_urlopen, f"{base}/healthz")
            document = await asyncio.to_thread(_urlopen, f"{base}/state")
            return [down, up, document]
        finally:
            await runner.cleanup()

    down, up, document = asyncio.run(scenario())
    assert down[0] == 503
    assert up[0] == 200
    assert document[1]["dns"] == {
        "1002": {"registered_asterisk": False, "bound_genesys": False, "bound_static": False, "bound_kamailio": False}
    }


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/state"])
def test_get_only(path: str) -> None:
    async def post() -> int:
        async with TestClient(TestServer(create_app(MonitorState("static")))) as client:
            return (await client.post(path)).status

    assert asyncio.run(post()) == 405


def test_static_mode_shows_whether_genesys_answers_the_probe_once_probed() -> None:
    state = MonitorState("static", ["1002"])
    _, _, before = asyncio.run(get(state, "/metrics"))
    assert "webrtc_monitor_genesys_answering" not in before  # not probed yet (or no probe configured)
    for answering, value in ((False, "0.0"), (True, "1.0")):
        state.genesys_answering = answering
        _, _, body = asyncio.run(get(state, "/metrics"))
        assert f"webrtc_monitor_genesys_answering {value}" in body
        assert json.loads(asyncio.run(get(state, "/state"))[2])["genesys_answering"] is answering
