"""The gateway-state reporter finds the project's containers by the labels compose gives them
(one `docker ps`), and asks Asterisk with `docker exec` of that container id: another project's
Asterisk, or a container without compose labels, is never asked."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .gateway_state_module import load

gateway_state = load()


def fake_docker(ps: str, calls: list[tuple[str, ...]]) -> Any:
    def docker(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        out = ps if args[0] == "ps" else "1002/sip:1002@127.0.0.1:5060 Avail\n"
        return subprocess.CompletedProcess(list(args), 0, out, "")

    return docker


def test_only_this_projects_running_containers_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ps = f"a1\tasterisk\t{tmp_path}\nb2\tasterisk\t/opt/another\nc3\t\t{tmp_path}\nd4\tnginx\t{tmp_path}/\n"
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(gateway_state, "docker", fake_docker(ps, calls))
    containers = gateway_state.running_containers(tmp_path)
    assert containers == {"asterisk": "a1", "nginx": "d4"}
    assert gateway_state.service_flags(containers) == {
        "nginx": True,
        "kamailio": False,
        "asterisk": True,
        "registration-monitor": False,
    }
    gateway_state.asterisk_cli(tmp_path, "pjsip show contacts")
    assert calls[-1] == ("exec", "a1", "asterisk", "-rx", "pjsip show contacts")


def test_no_asterisk_no_question(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(gateway_state, "docker", fake_docker(f"d4\tnginx\t{tmp_path}\n", calls))
    assert gateway_state.asterisk_cli(tmp_path, "core show channels concise") == ""
    assert [c[0] for c in calls] == ["ps"]


def test_a_websocket_listener_is_told_from_a_closed_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.98", 0))
        listener.listen()
        address = f"127.0.0.98:{listener.getsockname()[1]}"
        assert gateway_state.listening(address)
    assert not gateway_state.listening(address)  # closed now: refused
    assert not gateway_state.listening("not-an-address")
