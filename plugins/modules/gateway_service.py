#!/usr/bin/python
"""Act on one or more of the gateway's compose services in a single module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_service
short_description: Act on the gateway's compose services (run a command, restart, start, stop, kill, recreate)
version_added: "1.1.0"
description:
  - Finds which services of the gateway's compose project are running and acts on them in the same run,
    through the Docker CLI on the gateway host.
  - O(state=exec) runs a command in a running service (C(docker exec), no tty). A non-zero exit (or an
    output other than O(expect_stdout)) is retried until O(retry_seconds) have passed, since a service
    started a moment ago may not take commands yet. A service that is not running is skipped, or started
    with O(if_stopped=start).
  - O(state=restarted) restarts the services that run (a stopped one reads its files when it starts).
  - O(state=started) brings the services up, recreating those whose definition changed.
  - O(state=recreated) recreates the services whether or not their definition changed.
  - O(state=stopped) stops the services that run.
  - O(state=killed) kills the services that run with SIGKILL, so that no stop trap runs (Asterisk's
    un-REGISTER of its static contacts).
  - The Kamailio, Asterisk and nginx handlers and the mode switch call it; it replaces a lookup of the
    running containers followed by a second task.
author:
  - webrtc-genesys team
options:
  project_src:
    description:
      - The compose project's directory on the gateway host (the one holding C(docker-compose.yml)). Its
        running containers are found by the directory compose labelled them with.
    type: path
    required: true
  services:
    description:
      - The compose services to act on. O(state=exec) takes exactly one.
    type: list
    elements: str
    required: true
  state:
    description:
      - What to do with the services.
    type: str
    required: true
    choices: [exec, restarted, started, recreated, stopped, killed]
  argv:
    description:
      - The command for O(state=exec), as a list of arguments (no shell).
    type: list
    elements: str
  if_stopped:
    description:
      - For O(state=exec), what to do when the service is not running. V(skip) reports no change; V(start)
        starts it instead of running the command (a fresh daemon reads its files itself); V(fail) fails.
    type: str
    default: skip
    choices: [skip, start, fail]
  retry_seconds:
    description:
      - For O(state=exec), how long a failing command is retried, in seconds (0 runs it once).
    type: float
    default: 10
  retry_interval:
    description:
      - For O(state=exec), the pause between two attempts, in seconds.
    type: float
    default: 0.25
  expect_stdout:
    description:
      - For O(state=exec), the output (stripped) that counts as success, whatever the exit status (curl
        prints the 101 of a WebSocket handshake, then times out on the open connection). Without it, exit
        status 0 is success. A failed attempt is retried; the module fails when O(retry_seconds) have passed.
    type: str
  recreate:
    description:
      - For O(state=started), whether a running service whose definition changed is recreated (V(auto)) or
        left as it runs (V(never), for the restore of a failed switch, which must not cut the calls of a
        running Asterisk).
    type: str
    default: auto
    choices: [auto, never]
  dependencies:
    description:
      - For O(state=started) and O(state=recreated), whether the services the given ones depend on are started too.
    type: bool
    default: false
notes:
  - Check mode reports what would be done and does nothing.
  - Needs the Docker CLI with compose v2 on the gateway host (the gateway role's requirements).
seealso:
  - module: community.docker.docker_compose_v2
"""

EXAMPLES = r"""
- name: Reload PJSIP in the running Asterisk
  gcti.webrtc_genesys.gateway_service:
    project_src: /opt/webrtc-genesys/gateway
    services: [asterisk]
    state: exec
    argv: [asterisk, -rx, module reload res_pjsip.so]

- name: Reload nginx, or start it when it is not running
  gcti.webrtc_genesys.gateway_service:
    project_src: /opt/webrtc-genesys/gateway
    services: [nginx]
    state: exec
    argv: [nginx, -s, reload]
    if_stopped: start

- name: Kill Asterisk (no un-REGISTER on the way out)
  gcti.webrtc_genesys.gateway_service:
    project_src: /opt/webrtc-genesys/gateway
    services: [asterisk]
    state: killed
"""

RETURN = r"""
running:
  description:
    - The project's services that were running (or being restarted by their restart policy) before the module
      acted, as {service, container id}.
  returned: always
  type: dict
  sample: {asterisk: 3f2a..., nginx: 9c1b...}
acted:
  description: The services the module acted on (or would have, in check mode).
  returned: always
  type: list
  elements: str
  sample: [asterisk]
action:
  description: What was done, in words.
  returned: always
  type: str
  sample: "ran 'asterisk -rx module reload res_pjsip.so' in asterisk (1 attempt, 0.31 s)"
exit_status:
  description:
    - For O(state=exec), the exit status of the last attempt. (Not C(rc), which Ansible takes for failure when
      non-zero, while with O(expect_stdout) a non-zero exit can be a success.)
  returned: when a command ran
  type: int
stdout:
  description: For O(state=exec), the output of the last attempt.
  returned: when a command ran
  type: str
stderr:
  description: For O(state=exec), the error output of the last attempt.
  returned: when a command ran
  type: str
attempts:
  description: For O(state=exec), how many times the command ran.
  returned: when a command ran
  type: int
seconds:
  description: For O(state=exec), how long the attempts took.
  returned: when a command ran
  type: float
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gcti.webrtc_genesys.plugins.module_utils.compose import Compose, ComposeError, succeeded

ARGUMENT_SPEC: dict[str, Any] = {
    "project_src": {"type": "path", "required": True},
    "services": {"type": "list", "elements": "str", "required": True},
    "state": {
        "type": "str",
        "required": True,
        "choices": ["exec", "restarted", "started", "recreated", "stopped", "killed"],
    },
    "argv": {"type": "list", "elements": "str"},
    "if_stopped": {"type": "str", "default": "skip", "choices": ["skip", "start", "fail"]},
    "retry_seconds": {"type": "float", "default": 10},
    "retry_interval": {"type": "float", "default": 0.25},
    "expect_stdout": {"type": "str"},
    "recreate": {"type": "str", "default": "auto", "choices": ["auto", "never"]},
    "dependencies": {"type": "bool", "default": False},
}


class ServiceFailure(Exception):
    """The module fails with this message and the partial result."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def _exec(compose: Compose, params: dict[str, Any], check_mode: bool, result: dict[str, Any]) -> dict[str, Any]:
    services, argv = list(params["services"]), list(params.get("argv") or [])
    if len(services) != 1 or not argv:
        raise ServiceFailure("state=exec takes exactly one service and a non-empty argv", result)
    service, command = services[0], " ".join(argv)
    running = result["running"]
    if service not in running:
        if params["if_stopped"] == "fail":
            raise ServiceFailure(f"{service} is not running: cannot run '{command}'", result)
        if params["if_stopped"] == "skip":
            return _done(
                result, [], f"{service} is not running: '{command}' not run (it reads its files when it starts)"
            )
        if not check_mode:
            compose.up([service], dependencies=params["dependencies"])
        return _done(result, [service], f"{service} was not running: started it instead of running '{command}'")
    if check_mode:
        return _done(result, [service], f"would run '{command}' in {service}")
    expected = params.get("expect_stdout")
    ran = compose.exec(
        running[service],
        argv,
        retry_seconds=params["retry_seconds"],
        interval=params["retry_interval"],
        expect_stdout=expected,
    )
    result.update(exit_status=ran.rc, stdout=ran.stdout, stderr=ran.stderr, attempts=ran.attempts, seconds=ran.seconds)
    tries = f"{ran.attempts} attempt{'s' if ran.attempts != 1 else ''}, {ran.seconds} s"
    if not succeeded(ran.rc, ran.stdout, expected):
        wanted = f" printing '{expected}'" if expected is not None else ""
        raise ServiceFailure(
            f"'{command}' in {service} did not succeed{wanted} ({tries}): exit {ran.rc}, "
            f"{(ran.stderr or ran.stdout).strip()[-400:]!r}",
            result,
        )
    return _done(result, [service], f"ran '{command}' in {service} ({tries})")


def _up(compose: Compose, params: dict[str, Any], check_mode: bool, result: dict[str, Any]) -> dict[str, Any]:
    services, state, running = list(params["services"]), params["state"], result["running"]
    recreate = state == "recreated"
    acted = services if recreate else [s for s in services if s not in running]
    if not check_mode:
        compose.up(
            services,
            recreate=recreate,
            dependencies=params["dependencies"],
            keep_running=not recreate and params["recreate"] == "never",
        )
        if not recreate:  # a changed definition recreates a running service: its container id changes
            after = compose.running()
            acted = [s for s in services if after.get(s) != running.get(s)]
    verb = "recreated" if recreate else "started or recreated"
    return _done(
        result, acted, f"{verb} {', '.join(acted)}" if acted else f"{', '.join(services)} already up as defined"
    )


def _done(result: dict[str, Any], acted: list[str], action: str) -> dict[str, Any]:
    result.update(acted=acted, action=action, changed=bool(acted))
    return result


def act(compose: Compose, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Do what the parameters ask; return the module result (without the module's own keys)."""
    state: str = params["state"]
    running = compose.running()
    result: dict[str, Any] = {"running": running, "acted": [], "changed": False}
    if state == "exec":
        return _exec(compose, params, check_mode, result)
    if state in ("started", "recreated"):
        return _up(compose, params, check_mode, result)
    up = [s for s in params["services"] if s in running]
    if not up:
        return _done(result, [], f"{', '.join(params['services'])} not running: nothing to do")
    if not check_mode:
        if state == "restarted":
            compose.restart(up)
        elif state == "stopped":
            compose.stop(up)
        else:
            compose.kill([running[s] for s in up])
    return _done(result, up, f"{state} {', '.join(up)}")


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    compose = Compose(
        project_dir=module.params["project_src"],
        run=module.run_command,
        docker=module.get_bin_path("docker", required=True),
    )
    try:
        result = act(compose, module.params, module.check_mode)
    except ServiceFailure as failure:
        module.fail_json(msg=str(failure), **failure.result)
    except ComposeError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
