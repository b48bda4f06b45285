"""gateway_mode_problems (plugins/filter/gateway_state_checks.py): a reading in the mode passes,
each way out of it is named, and the mode table is the role's own (roles/gateway/vars)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..docs import ansible_doc

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".venv/collections"))

from ansible_collections.gcti.webrtc_genesys.plugins.filter.gateway_state_checks import (  # noqa: E402
    gateway_mode_problems,
)

MODES: dict[str, Any] = yaml.safe_load((ROOT / "roles/gateway/vars/main.yml").read_text())["gateway_modes"]
DNS = [{"dn": "1002", "password": "never-shown"}, {"dn": "1003", "password": "x"}]
ALL_UP = {"asterisk": True, "kamailio": True, "registration-monitor": True, "nginx": True}
KAMAILIO: dict[str, Any] = {
    "services": ALL_UP,
    "kamailio": {"reachable": True, "ws_listening": True, "forwarded": {}, "listed": {}},
    "asterisk": {"contacts": {}, "registrations": {}},
    "bound": {"static": [], "forwarded": []},
}
STATIC: dict[str, Any] = {
    "services": {**ALL_UP, "kamailio": False},
    "kamailio": {"reachable": False, "forwarded": {}, "listed": {}},
    "asterisk": {"contacts": {}, "registrations": {"1002": {}, "1003": {}}},
    "bound": {"static": ["1002", "1003"], "forwarded": []},
}


def changed(state: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(state)
    *parents, last = path.split(".")
    target = out
    for key in parents:
        target = target[key]
    target[last] = value
    return out


@pytest.mark.parametrize(("state", "mode"), [(KAMAILIO, "kamailio"), (STATIC, "static")])
def test_a_reading_in_the_mode_has_no_problem(state: dict[str, Any], mode: str) -> None:
    assert gateway_mode_problems(state, mode, MODES, DNS) == []


@pytest.mark.parametrize(
    ("state", "mode", "expected"),
    [
        (changed(KAMAILIO, "services.kamailio", False), "kamailio", "kamailio is not running"),
        (changed(KAMAILIO, "kamailio.reachable", False), "kamailio", "Kamailio's RPC does not answer"),
        (changed(KAMAILIO, "kamailio.ws_listening", False), "kamailio", "WebSocket listener does not accept"),
        (changed(KAMAILIO, "asterisk.registrations", {"1002": {}}), "kamailio", "static registrations left"),
        (changed(STATIC, "services.kamailio", True), "static", "kamailio is running (the mode stops it)"),
        (changed(STATIC, "services.nginx", False), "static", "nginx is not running"),
        (changed(STATIC, "bound.static", ["1002"]), "static", "DN(s) 1003 not Registered"),
        (KAMAILIO, "static", "kamailio is running"),
        (STATIC, "kamailio", "kamailio is not running"),
        (KAMAILIO, "bogus", "unknown mode"),
    ],
)
def test_each_way_out_of_the_mode_is_named(state: dict[str, Any], mode: str, expected: str) -> None:
    problems = gateway_mode_problems(state, mode, MODES, DNS)
    assert any(expected in p for p in problems), problems
    assert not any("never-shown" in p for p in problems)


def test_an_empty_or_older_reading_is_not_the_mode() -> None:
    assert gateway_mode_problems({}, "static", MODES, DNS)
    older = {k: v for k, v in KAMAILIO.items()}
    older["kamailio"] = {"reachable": True}  # a reporter without the WebSocket probe
    assert gateway_mode_problems(older, "kamailio", MODES, DNS) == []


def test_ansible_doc_shows_the_filter() -> None:
    doc = ansible_doc("gateway_mode_problems", "filter")
    assert set(doc["doc"]["options"]) == {"_input", "mode", "modes", "dns"}
