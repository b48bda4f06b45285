"""The gateway_service module (plugins/modules/gateway_service.py, plugins/module_utils/compose.py):
which containers it takes for the project's, what it runs for each state, the retries of a
command and their limit, check mode, and that ansible-doc shows its documentation. The Docker
CLI is replaced by a recorder here; every switch of the integration suite runs the module
against the lab's real compose project."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from ..docs import ansible_doc

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".venv/collections"))

from ansible_collections.gcti.webrtc_genesys.plugins.module_utils.compose import (  # noqa: E402
    Compose,
    ComposeError,
    parse_running,
)
from ansible_collections.gcti.webrtc_genesys.plugins.modules.gateway_service import (  # noqa: E402
    ARGUMENT_SPEC,
    ServiceFailure,
    act,
)

PROJECT = "/opt/gw"


class Docker:
    """Answers `docker ps` with the running services, each exec from a queue of (rc, out)."""

    def __init__(self, running: dict[str, str], execs: list[tuple[int, str]] | None = None) -> None:
        self.running = dict(running)
        self.execs = list(execs or [])
        self.calls: list[list[str]] = []
        self.now = 0.0

    def ps_lines(self) -> str:
        lines = [f"{cid}\t{svc}\t{PROJECT}" for svc, cid in self.running.items()]
        lines.append("other1\tasterisk\t/opt/another-project")  # another project's Asterisk
        lines.append("lone2\t\t")  # a container without compose labels
        return "\n".join(lines) + "\n"

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[1] == "ps":
            return 0, self.ps_lines(), ""
        if argv[1] == "exec":
            self.now += 0.1
            rc, out = self.execs.pop(0) if self.execs else (0, "")
            return rc, out, "" if rc == 0 else "not yet"
        if argv[1] == "compose" and "up" in argv:
            for svc in [a for a in argv[argv.index("never") + 1 :] if not a.startswith("--")]:
                if "--force-recreate" in argv or svc not in self.running:
                    self.running[svc] = f"new-{svc}"
            return 0, "", ""
        return 0, "", ""

    def acted(self) -> list[list[str]]:
        return [c for c in self.calls if c[1] != "ps"]


def compose(docker: Docker) -> Compose:
    def sleep(seconds: float) -> None:
        docker.now += seconds

    return Compose(project_dir=PROJECT, run=docker, sleep=sleep, clock=lambda: docker.now)


def params(**given: Any) -> dict[str, Any]:
    out = {k: v.get("default") for k, v in ARGUMENT_SPEC.items()}
    out.update(project_src=PROJECT, **given)
    return out


def test_only_the_projects_running_containers_are_taken() -> None:
    out = f"a1\tasterisk\t{PROJECT}\nb2\tasterisk\t/opt/other\nc3\t\t{PROJECT}\nd4\tnginx\t{PROJECT}/\n"
    assert parse_running(out, PROJECT) == {"asterisk": "a1", "nginx": "d4"}


def test_a_container_its_restart_policy_keeps_restarting_counts_as_up() -> None:
    """A Kamailio that cannot bind its port loops in "restarting": a stop must still stop it."""
    docker = Docker({"kamailio": "k1"})
    result = act(compose(docker), params(services=["kamailio"], state="stopped"), False)
    [ps] = [c for c in docker.calls if c[1] == "ps"]
    assert "status=running" in ps and "status=restarting" in ps
    assert result["acted"] == ["kamailio"]


def test_a_command_runs_in_the_running_container_by_its_id() -> None:
    docker = Docker({"asterisk": "a1"})
    result = act(compose(docker), params(services=["asterisk"], state="exec", argv=["asterisk", "-rx", "x y"]), False)
    assert docker.acted() == [["docker", "exec", "a1", "asterisk", "-rx", "x y"]]
    assert result["changed"] and result["attempts"] == 1 and result["exit_status"] == 0
    assert result["acted"] == ["asterisk"]


def test_a_failing_command_is_retried_until_it_succeeds() -> None:
    docker = Docker({"asterisk": "a1"}, execs=[(1, ""), (1, ""), (0, "ok")])
    result = act(compose(docker), params(services=["asterisk"], state="exec", argv=["true"]), False)
    assert result["attempts"] == 3 and result["stdout"] == "ok"


def test_a_command_still_failing_after_retry_seconds_fails_naming_it() -> None:
    docker = Docker({"asterisk": "a1"}, execs=[(1, "")] * 100)
    with pytest.raises(ServiceFailure) as failure:
        act(
            compose(docker),
            params(
                services=["asterisk"], state="exec", argv=["asterisk", "-rx", "r"], retry_seconds=2, retry_interval=0.4
            ),
            False,
        )
    assert "'asterisk -rx r' in asterisk did not succeed" in str(failure.value)
    attempts = failure.value.result["attempts"]
    assert 3 <= attempts <= 5, attempts  # about 2 s of 0.4 s pauses plus 0.1 s runs, not more
    assert docker.now <= 2.5


def test_an_expected_output_counts_whatever_the_exit_status() -> None:
    # curl prints the handshake's 101, then times out on the open connection (exit 28)
    docker = Docker({"kamailio": "k1"}, execs=[(7, "000"), (28, "101")])
    result = act(
        compose(docker), params(services=["kamailio"], state="exec", argv=["curl"], expect_stdout="101"), False
    )
    assert result["attempts"] == 2
    docker = Docker({"kamailio": "k1"}, execs=[(0, "404")] * 100)
    with pytest.raises(ServiceFailure):
        act(
            compose(docker),
            params(services=["kamailio"], state="exec", argv=["curl"], expect_stdout="101", retry_seconds=1),
            False,
        )


@pytest.mark.parametrize(("if_stopped", "changed", "started"), [("skip", False, False), ("start", True, True)])
def test_a_command_for_a_stopped_service(if_stopped: str, changed: bool, started: bool) -> None:
    docker = Docker({"asterisk": "a1"})
    result = act(
        compose(docker),
        params(services=["nginx"], state="exec", argv=["nginx", "-s", "reload"], if_stopped=if_stopped),
        False,
    )
    assert result["changed"] is changed
    assert not any(c[1] == "exec" for c in docker.calls)
    assert any("up" in c and "nginx" in c for c in docker.calls) is started


def test_a_command_for_a_stopped_service_can_fail() -> None:
    with pytest.raises(ServiceFailure, match="nginx is not running"):
        act(compose(Docker({})), params(services=["nginx"], state="exec", argv=["x"], if_stopped="fail"), False)


def test_exec_takes_one_service_and_a_command() -> None:
    with pytest.raises(ServiceFailure, match="exactly one service"):
        act(compose(Docker({})), params(services=["nginx", "asterisk"], state="exec", argv=["x"]), False)


@pytest.mark.parametrize(("state", "command"), [("stopped", "stop"), ("restarted", "restart"), ("killed", "kill")])
def test_stop_restart_and_kill_touch_only_what_runs(state: str, command: str) -> None:
    docker = Docker({"asterisk": "a1"})
    result = act(compose(docker), params(services=["asterisk", "kamailio"], state=state), False)
    assert result["acted"] == ["asterisk"] and result["changed"]
    [call] = docker.acted()
    assert command in call and "kamailio" not in call
    if state == "killed":
        assert call == ["docker", "kill", "a1"]  # by id: SIGKILL, no stop trap
    docker = Docker({"asterisk": "a1"})
    result = act(compose(docker), params(services=["kamailio"], state=state), False)
    assert not result["changed"] and docker.acted() == []


def test_started_reports_only_the_services_it_started_or_recreated() -> None:
    docker = Docker({"asterisk": "a1"})
    result = act(compose(docker), params(services=["asterisk", "kamailio"], state="started"), False)
    assert result["acted"] == ["kamailio"]
    [up] = docker.acted()
    assert up[:4] == ["docker", "compose", "--project-directory", PROJECT]
    assert "--no-deps" in up and "--force-recreate" not in up and "--no-recreate" not in up
    result = act(
        compose(docker),
        params(services=["asterisk", "kamailio"], state="started", recreate="never", dependencies=True),
        False,
    )
    assert not result["changed"]
    assert "--no-recreate" in docker.acted()[-1] and "--no-deps" not in docker.acted()[-1]


def test_recreated_always_recreates() -> None:
    docker = Docker({"registration-monitor": "m1"})
    result = act(compose(docker), params(services=["registration-monitor"], state="recreated"), False)
    assert result["acted"] == ["registration-monitor"]
    assert "--force-recreate" in docker.acted()[0]


@pytest.mark.parametrize("state", ["exec", "restarted", "started", "recreated", "stopped", "killed"])
def test_check_mode_only_looks(state: str) -> None:
    docker = Docker({"asterisk": "a1"})
    result = act(compose(docker), params(services=["asterisk"], state=state, argv=["x"]), True)
    assert docker.acted() == []
    assert result["changed"] is (state != "started")  # a running Asterisk is already started


def test_a_docker_failure_names_the_command() -> None:
    def broken(argv: list[str]) -> tuple[int, str, str]:
        return 1, "", "Cannot connect to the Docker daemon"

    with pytest.raises(ComposeError, match=r"docker ps .* failed \(exit 1\): Cannot connect"):
        Compose(project_dir=PROJECT, run=broken).running()


def test_ansible_doc_shows_the_module() -> None:
    doc = ansible_doc("gateway_service")
    assert set(doc["doc"]["options"]) == set(ARGUMENT_SPEC)
    for name, spec in ARGUMENT_SPEC.items():
        assert doc["doc"]["options"][name]["type"] == spec["type"], name
        assert doc["doc"]["options"][name].get("choices") == spec.get("choices"), name
    assert {"running", "acted", "action"} <= set(doc["return"])
    assert doc["examples"]
