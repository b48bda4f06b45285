"""The gateway's compose services, acted on through the Docker CLI on the gateway host.

Shared by the collection's modules (``gateway_service``). One place knows how a service is
found (the compose labels of its running container), how a command runs in it (``docker exec``
of that container: no second parse of the compose file), and how a service is started, stopped,
killed or recreated (``docker compose`` in the project directory, as community.docker's
docker_compose_v2 does). Every call goes through one runner, so the decisions are unit-tested
without a Docker engine and exercised for real by the integration suite."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# (argv) -> (rc, stdout, stderr); AnsibleModule.run_command fits it.
Runner = Callable[[list[str]], tuple[int, str, str]]

SERVICE_LABEL = "com.docker.compose.service"
DIRECTORY_LABEL = "com.docker.compose.project.working_dir"


class ComposeError(Exception):
    """A Docker command failed; the message names the command and what it printed."""


@dataclass
class ExecResult:
    """What a command run in a service did: its last exit status and output, and how often it ran."""

    rc: int
    stdout: str
    stderr: str
    attempts: int
    seconds: float


@dataclass
class Compose:
    """A compose project on the host, known by its directory (the compose file's own name is used)."""

    project_dir: str
    run: Runner
    docker: str = "docker"
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    calls: list[list[str]] = field(default_factory=list)

    def _call(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return self.run(argv)

    def _checked(self, argv: list[str]) -> str:
        rc, out, err = self._call(argv)
        if rc != 0:
            raise ComposeError(f"{' '.join(argv)} failed (exit {rc}): {(err or out).strip()[-400:]}")
        return out

    def _compose(self, *args: str) -> list[str]:
        return [self.docker, "compose", "--project-directory", self.project_dir, *args]

    def running(self) -> dict[str, str]:
        """The project's services that run or are being restarted by their restart policy (a
        daemon that exits at start: it must be stopped like a running one), {service: container
        id}, found by the directory compose labelled them with."""
        labels = "\t".join('{{.Label "' + label + '"}}' for label in (SERVICE_LABEL, DIRECTORY_LABEL))
        out = self._checked(
            [
                self.docker,
                "ps",
                "--no-trunc",
                "--filter",
                f"label={DIRECTORY_LABEL}",
                "--filter",
                "status=running",
                "--filter",
                "status=restarting",
                "--format",
                "{{.ID}}\t" + labels,
            ]
        )
        return parse_running(out, self.project_dir)

    def exec(
        self,
        container: str,
        argv: Sequence[str],
        retry_seconds: float = 0.0,
        interval: float = 0.25,
        expect_stdout: str | None = None,
    ) -> ExecResult:
        """Run argv in a container (no tty). A failed attempt (see succeeded) is retried every
        interval until retry_seconds have passed (a service started a moment ago may not take
        commands yet); the last attempt's result is returned."""
        started = self.clock()
        attempts = 0
        while True:
            attempts += 1
            rc, out, err = self._call([self.docker, "exec", container, *argv])
            ok = succeeded(rc, out, expect_stdout)
            elapsed = self.clock() - started
            if ok or elapsed + interval > retry_seconds:
                return ExecResult(rc, out, err, attempts, round(elapsed, 3))
            self.sleep(interval)

    def up(
        self,
        services: Sequence[str],
        recreate: bool = False,
        dependencies: bool = False,
        keep_running: bool = False,
    ) -> None:
        """Start services: recreated when their definition changed, always with recreate, never
        with keep_running (a running container stays as it is)."""
        args = ["up", "--detach", "--no-color", "--quiet-pull", "--pull", "never"]
        if not dependencies:
            args.append("--no-deps")
        if recreate:
            args.append("--force-recreate")
        elif keep_running:
            args.append("--no-recreate")
        self._checked(self._compose(*args, *services))

    def restart(self, services: Sequence[str]) -> None:
        self._checked(self._compose("restart", *services))

    def stop(self, services: Sequence[str]) -> None:
        self._checked(self._compose("stop", *services))

    def kill(self, containers: Sequence[str]) -> None:
        """SIGKILL: the container's stop trap (Asterisk's un-REGISTER) does not run."""
        self._checked([self.docker, "kill", *containers])


def succeeded(rc: int, stdout: str, expect_stdout: str | None) -> bool:
    """Exit status 0, or, when an output is expected, exactly that output (stripped) whatever the
    exit status: curl prints the 101 of a WebSocket handshake, then times out on the open
    connection."""
    return rc == 0 if expect_stdout is None else stdout.strip() == expect_stdout


def parse_running(out: str, project_dir: str) -> dict[str, str]:
    """``docker ps`` lines "<id>\\t<service>\\t<project directory>" as {service: id}, for the
    containers of the project in project_dir only (symbolic links resolved on both sides)."""
    wanted = os.path.realpath(project_dir)
    found: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 3 and parts[0] and parts[1] and os.path.realpath(parts[2]) == wanted:
            found[parts[1]] = parts[0]
    return found
