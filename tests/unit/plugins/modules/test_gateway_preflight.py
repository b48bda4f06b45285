"""The gateway_preflight module's host checks (plugins/module_utils/preflight.py) against real
sockets on loopback: a SIP answer counts as reachable, silence and non-SIP do not, a listener
held by the wrong program is named; the module stops before the config checks when the host
failed; ansible-doc shows it. The config checks themselves (the daemons in throwaway containers)
run in every switch of the integration suite and in its bad-input tests."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..docs import ansible_doc

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".venv/collections"))

from ansible_collections.gcti.webrtc_genesys.plugins.module_utils import preflight as checks  # noqa: E402
from ansible_collections.gcti.webrtc_genesys.plugins.modules.gateway_preflight import (  # noqa: E402
    ARGUMENT_SPEC,
    preflight,
)

ADDRESS = "127.0.0.97"  # loopback only, no lab address


@pytest.fixture
def responder(request: pytest.FixtureRequest) -> Iterator[str]:
    """A UDP peer on loopback answering each datagram with request.param (None: silence)."""
    answer: bytes | None = request.param
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ADDRESS, 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                _, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            if answer is not None:
                sock.sendto(answer, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"{ADDRESS}:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    sock.close()


@pytest.mark.parametrize(
    "responder", [b"SIP/2.0 200 OK\r\n\r\n", b"SIP/2.0 503 Service Unavailable\r\n\r\n"], indirect=True
)
def test_any_sip_answer_means_genesys_is_reachable(responder: str) -> None:
    assert checks.check_genesys(responder, timeout=2) == []


@pytest.mark.parametrize(
    ("responder", "problem"), [(None, "did not answer"), (b"HTTP/1.1 400\r\n\r\n", "not SIP")], indirect=["responder"]
)
def test_silence_or_another_protocol_is_a_problem(responder: str, problem: str) -> None:
    [found] = checks.check_genesys(responder, timeout=0.5)
    assert problem in found and responder in found


def test_a_listener_held_by_another_program_is_named() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((ADDRESS, 0))
        held.listen()
        port = held.getsockname()[1]
        me = Path("/proc/self/comm").read_text().strip()  # python, or pytest when run as .venv/bin/pytest
        [found] = checks.check_ports([["tcp", ADDRESS, port, "nginx"]])
        assert f"tcp {ADDRESS}:{port} is needed by nginx but is held by {me}" in found
        # the owner the mode wants is no clash
        assert checks.check_ports([["tcp", ADDRESS, port, found.split("held by ")[1].split(",")[0]]]) == []
    assert checks.check_ports([["tcp", ADDRESS, port, "nginx"]]) == []  # free again


@pytest.mark.parametrize("responder", [None], indirect=True)
def test_the_configs_are_not_checked_when_the_host_failed(responder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "check_genesys", lambda target: [f"Genesys {target} did not answer"])
    ran: list[str] = []
    monkeypatch.setattr(
        "ansible_collections.gcti.webrtc_genesys.plugins.modules.gateway_preflight.check_configs",
        lambda *a, **k: ran.append("configs") or {},
    )
    result = preflight(
        {
            "ports": [],
            "genesys": responder,
            "image": "x",
            "address": ADDRESS,
            "mode": "static",
            "dns": ["1002"],
            "configs": {},
            "keys_dir": None,
        }
    )
    assert ran == []
    assert result["checks"] == {"host": "FAILED", "nginx": "not run", "kamailio": "not run", "asterisk": "not run"}
    assert any("did not answer" in p for p in result["problems"])


def test_a_config_path_leaving_the_stage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the staging directory"):
        checks.unpack(tmp_path, {"../escape.conf": "x"}, None)
    checks.unpack(tmp_path, {"nginx/nginx.conf": "events {}\n"}, None)
    staged = tmp_path / "nginx/nginx.conf"
    assert staged.read_text() == "events {}\n" and oct(staged.stat().st_mode & 0o777) == "0o600"


def test_ansible_doc_shows_the_module() -> None:
    doc = ansible_doc("gateway_preflight")
    assert set(doc["doc"]["options"]) == set(ARGUMENT_SPEC)
    assert {"problems", "checks"} <= set(doc["return"])
