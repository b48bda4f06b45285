"""Helpers that talk to the embedded lab exactly as an operator would.

Everything here reaches only loopback addresses (127.0.0.54 gateway, 127.0.0.81 stand-in) and
the lab's own docker compose projects. Values come from inventories/lab, never hard-coded twice.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from genesys_bindings import dump as _dump_bindings

from .logs import error_lines as error_lines
from .polling import wait_for

ROOT = Path(__file__).resolve().parents[2]

LAB_VARS: dict[str, Any] = yaml.safe_load((ROOT / "inventories/lab/group_vars/gateways.yml").read_text())
PROJECT = Path(LAB_VARS["webrtc_project_dir"])
GATEWAY = LAB_VARS["webrtc_gateway_address"]
GENESYS = LAB_VARS["webrtc_genesys_address"]
WSS_URL = f"wss://{GATEWAY}:{LAB_VARS['nginx_listen_port']}/ws"
MONITOR = f"http://{GATEWAY}:{LAB_VARS.get('registration_monitor_listen_port', 9110)}"
HEALTHZ_URL = f"https://{GATEWAY}:{LAB_VARS['nginx_listen_port']}/healthz"
# host:port of the contact Genesys holds for a DN bound through the gateway (Asterisk's SIP).
GATEWAY_DEFAULTS: dict[str, Any] = yaml.safe_load((ROOT / "roles/gateway/defaults/main.yml").read_text())
ASTERISK_SIP = f"{GATEWAY}:{LAB_VARS.get('webrtc_asterisk_sip_port', GATEWAY_DEFAULTS['webrtc_asterisk_sip_port'])}"
STANDIN_RPC = f"http://{GENESYS}:8081/RPC"
# The second stand-in, another address of the Genesys pool (playbooks/lab.yml), for failover.
GENESYS_B = str(LAB_VARS["lab_genesys_secondary_address"])
STANDIN_B_RPC = f"http://{GENESYS_B}:8081/RPC"
STANDIN_PROJECT = Path(LAB_VARS["lab_root"]) / "genesys"
KAMAILIO_RPC = f"http://{LAB_VARS['webrtc_kamailio_rpc_address']}:5071/RPC"
DN_PASSWORDS: dict[str, str] = {d["dn"]: d["password"] for d in LAB_VARS["webrtc_dns"]}
# The Genesys stand-in as a SIP peer, and the far end behind it that answers the agents' calls
# (tests/lab/farend.py on roles/lab_genesys lab_genesys_far_end).
STANDIN = (GENESYS, int(LAB_VARS["webrtc_genesys_port"]))
FAR_END_PORT = 5090
# The collection's playbook that reaches each mode.
MODE_PLAYBOOKS = {"kamailio": "revert.yml", "static": "rollback.yml"}
CLIENT = ROOT / "tests/clients/sip-client.mjs"

T = TypeVar("T")


def assert_loopback(address: str) -> None:
    if not address.startswith("127."):
        raise AssertionError(f"lab tests only talk to loopback, refused {address}")


for _address in (GATEWAY, GENESYS):
    assert_loopback(_address)


def genesys_bindings(rpc: str = STANDIN_RPC) -> dict[str, list[dict[str, Any]]]:
    """The stand-in registrar's bindings: {"1002": [{"contact", "expires"}]} (the second
    stand-in's with rpc=STANDIN_B_RPC)."""
    return _dump_bindings(rpc)


def compose(*args: str, project: Path = PROJECT, check: bool = True, timeout: float = 60) -> str:
    result = subprocess.run(
        ["docker", "compose", "--project-directory", str(project), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker compose {' '.join(args)} failed: {result.stderr}")
    return result.stdout + result.stderr


def container_state(service: str, project: Path = PROJECT) -> dict[str, Any] | None:
    """docker inspect's State of a compose service's container (None: no container)."""
    cid = compose("ps", "-aq", service, project=project).strip()
    if not cid:
        return None
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{json .State}}|{{.RestartCount}}", cid],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    state_json, _, restarts = out.rpartition("|")
    state: dict[str, Any] = json.loads(state_json)
    state["RestartCount"] = int(restarts)
    return state


# A log read for an absence check (no secret, no ERROR line): the container's whole history,
# which is stricter than a window (leftovers can only make such a check fail, never pass).
WHOLE_HISTORY = "1970-01-01T00:00:00Z"


def service_log(service: str, since: str) -> str:
    """The service's log lines written since `since` (an explicit UTC time: utc_now() taken when
    the test began, so that earlier tests' lines cannot satisfy a check; or WHOLE_HISTORY)."""
    return compose("logs", "--no-log-prefix", "--no-color", "--since", since, service)


def utc_now() -> str:
    """Now, as an explicit UTC time for `docker compose logs --since` (a log read from a test's start)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def standin_log(since: str) -> str:
    """The Genesys stand-in's log lines since `since` (an explicit UTC time)."""
    return compose("logs", "--no-log-prefix", "--no-color", "--since", since, "genesys", project=STANDIN_PROJECT)


def asterisk_cli(command: str) -> str:
    return compose("exec", "-T", "asterisk", "asterisk", "-rx", command)


def gateway_state() -> dict[str, Any]:
    out = subprocess.run(
        [str(PROJECT / "bin/gateway-state"), "--project", str(PROJECT), "--rpc", KAMAILIO_RPC],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    state: dict[str, Any] = json.loads(out)
    return state


def jsonrpc(url: str, method: str, *params: Any) -> dict[str, Any]:
    """One JSON-RPC call to a Kamailio (the gateway's, or a stand-in's): the whole reply."""
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        reply: dict[str, Any] = json.load(response)
    return reply


def standin_rpc(method: str, *params: Any, rpc: str = STANDIN_RPC) -> Any:
    """One JSON-RPC call to a Genesys stand-in (the first by default); an error answer fails."""
    reply = jsonrpc(rpc, method, *params)
    assert "error" not in reply, reply
    return reply.get("result")


def standin_state(state: int, rpc: str = STANDIN_RPC) -> None:
    """0 up, 1 silent (no answer at all), 2 unavailable (503 to everything): at run time."""
    standin_rpc("htable.seti", "standin", "state", state, rpc=rpc)


def standin_forget(dns: set[str], rpc: str = STANDIN_RPC) -> None:
    """The stand-in forgets every binding of these DNs (a restarted registrar)."""
    for dn in dns:
        standin_rpc("ul.rm", "location", dn, rpc=rpc)


def kamailio_rpc(method: str, *params: Any) -> Any:
    return jsonrpc(KAMAILIO_RPC, method, *params).get("result")


def kamailio_switch_action(action: str, dn: str | None = None, body: str | None = None) -> dict[str, Any]:
    """Call one of Kamailio's switch actions (/forwarded/reassert, /forwarded/unregister,
    /forwarded/clear for one DN, or with `body` a POST such as /forwarded/clear of a list of DNs);
    its JSON answer, e.g. {"reasserted": <DNs sent a REGISTER>}."""
    base = KAMAILIO_RPC.rsplit("/RPC", 1)[0]
    url = f"{base}/forwarded/{action}" + (f"?dn={dn}" if dn else "")
    assert_loopback(url.split("//", 1)[1].split(":", 1)[0])
    request = urllib.request.Request(
        url, data=body.encode() if body is not None else None, headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def rising(probe: Callable[[], int], seconds: float = 1.0) -> bool:
    """A counter (packets, RTP received) grows over `seconds`."""
    first = probe()
    time.sleep(seconds)
    return probe() > first


def wait_for_text(what: str, fetch: Callable[[], str], needle: str, timeout: float = 15) -> str:
    """Poll fetch() until its text contains needle; return that text."""

    def probe() -> str | None:
        text = fetch()
        return text if needle in text else None

    return wait_for(what, probe, timeout=timeout)


@dataclass
class Client:
    """A running JsSIP client process (node tests/clients/sip-client.mjs)."""

    proc: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)

    def read_until(self, event: str, dns: set[str], timeout: float = 20) -> list[dict[str, Any]]:
        """Read events until every DN in dns reported `event` (registered, unregistered...)."""
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while seen < dns:
            if time.monotonic() > deadline:
                raise AssertionError(f"clients {sorted(dns - seen)} never reported {event}: {self.events[-10:]}")
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"client exited before {event}: {self.events[-10:]}")
            item = json.loads(line)
            self.events.append(item)
            if item["event"] == event:
                seen.add(item["dn"])
            if item["event"] == "registrationFailed" and event == "registered":
                raise AssertionError(f"registration failed: {item}")
        return self.events

    def finish(self) -> list[dict[str, Any]]:
        """Stop the client and return every event it printed before the stop, unread ones included."""
        stopped_ms = time.time() * 1000
        self.stop()
        assert self.proc.stdout is not None
        self.events += [json.loads(line) for line in self.proc.stdout.read().splitlines() if line.startswith("{")]
        return [event for event in self.events if event["t"] < stopped_ms]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def client_command(users: dict[str, str], action: str, *extra: str, url: str = WSS_URL) -> list[str]:
    cmd = ["node", "--no-warnings", str(CLIENT), "--url", url, "--action", action]
    for dn, password in users.items():
        cmd += ["--user", f"{dn}:{password}"]
    return [*cmd, *extra]


def client_env() -> dict[str, str]:
    # The lab certificate is self-signed: trust it in the test client only.
    return {**os.environ, "NODE_TLS_REJECT_UNAUTHORIZED": "0"}


def run_client(
    users: dict[str, str], action: str, *extra: str, timeout: float = 40, check: bool = True
) -> list[dict[str, Any]]:
    """Run a client to completion (register / unregister) and return its events."""
    result = subprocess.run(
        client_command(users, action, *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=client_env(),
        check=False,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if check and result.returncode != 0:
        raise AssertionError(f"client {action} failed ({result.returncode}): {events} {result.stderr[-500:]}")
    return events


def spawn_hold_client(users: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    """Start a `hold` client process (its events on stdout, one JSON line each)."""
    return subprocess.Popen(
        client_command(users, "hold", *extra),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=client_env(),
    )


@contextmanager
def held_clients(users: dict[str, str], *extra: str, reconnect: bool = True) -> Iterator[Client]:
    """Clients that register and stay registered (reconnecting like the Electron app)."""
    args = [*extra, "--reconnect"] if reconnect else list(extra)
    client = Client(spawn_hold_client(users, *args))
    try:
        client.read_until("registered", set(users))
        yield client
    finally:
        client.stop()


def _playbook_command(playbook: str, extra_file: str | None, *args: str) -> tuple[list[str], dict[str, str]]:
    cmd = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(ROOT / "inventories/lab/hosts.yml"), *args]
    if extra_file:
        cmd += ["-e", f"@{extra_file}"]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return [*cmd, str(ROOT / "playbooks" / playbook)], env


@contextmanager
def _extra_vars_file(extra_vars: dict[str, Any] | None) -> Iterator[str | None]:
    # Extra vars go in a file (0600: they may hold passwords): 3000 DNs on the command line
    # exceed the kernel's argument size limit.
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="extra-vars-") as extra:
        if extra_vars:
            json.dump(extra_vars, extra)
            extra.flush()
        yield extra.name if extra_vars else None


def run_playbook(
    playbook: str, extra_vars: dict[str, Any] | None = None, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run one of the collection's playbooks against the lab inventory."""
    with _extra_vars_file(extra_vars) as extra:
        cmd, env = _playbook_command(playbook, extra, *args)
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, check=False)


@dataclass
class RunningPlaybook:
    """A playbook started in the background; output() is what it printed so far."""

    proc: subprocess.Popen[str]
    log: Any

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return str(self.log.read())


@contextmanager
def playbook_running(playbook: str, extra_vars: dict[str, Any] | None = None) -> Iterator[RunningPlaybook]:
    """A playbook running in the background while the test acts (stopped if the test fails first)."""
    with _extra_vars_file(extra_vars) as extra, tempfile.TemporaryFile("w+") as log:
        cmd, env = _playbook_command(playbook, extra)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
        try:
            yield RunningPlaybook(proc, log)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def monitor_metrics() -> dict[str, float]:
    """The registration monitor's /metrics, as {name{labels}: value} for its webrtc_* series."""
    with urllib.request.urlopen(f"{MONITOR}/metrics", timeout=3) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(webrtc_[a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def monitor_gauge(name: str) -> float:
    """One series of the monitor's /metrics; -1 when it is not there."""
    return monitor_metrics().get(name, -1.0)


def healthz() -> str:
    """nginx's /healthz answer: "ok <mode>" of the nginx.conf it runs (the /ws target)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the lab's self-signed certificate
    with urllib.request.urlopen(HEALTHZ_URL, context=context, timeout=3) as response:
        return str(response.read().decode().strip())


def ensure_mode(mode: str, extra_vars: dict[str, Any] | None = None) -> None:
    """Bring the lab to a mode with the collection's own playbook (no-op when already there)."""
    playbook = MODE_PLAYBOOKS[mode]
    if not extra_vars and gateway_state().get("mode") == mode:
        return
    result = run_playbook(playbook, extra_vars)
    assert result.returncode == 0, result.stdout[-3000:]


# The user-part prefix of the contact Kamailio registers at Genesys (sip:<prefix><dn>@...).
FORWARDED_PREFIX = str(
    LAB_VARS.get("webrtc_forwarded_contact_prefix", GATEWAY_DEFAULTS["webrtc_forwarded_contact_prefix"])
)


def is_forwarded_contact(contact: str) -> bool:
    """A contact Kamailio registered (sip:<prefix><dn>@...), not Asterisk's static one."""
    return contact.startswith(f"sip:{FORWARDED_PREFIX}")


def is_static_contact(contact: str) -> bool:
    """Asterisk's own static contact (sip:<dn>@...;line=...)."""
    return ";line=" in contact


def forwarded_bindings(dn: str) -> list[dict[str, Any]]:
    """The DN's bindings at the stand-in that Kamailio made."""
    return [b for b in genesys_bindings().get(dn, []) if is_forwarded_contact(b["contact"])]


def dns_vars(users: dict[str, str]) -> list[dict[str, str]]:
    """webrtc_dns for a run: the lab's own DNs plus `users`."""
    merged = {**DN_PASSWORDS, **users}
    return [{"dn": dn, "password": pw} for dn, pw in sorted(merged.items())]


def _bindings_or_none() -> dict[str, list[dict[str, Any]]] | None:
    try:
        return genesys_bindings()
    except (OSError, ValueError):
        return None


def forwarded_bound(dns: list[str] | set[str], bindings: dict[str, list[dict[str, Any]]] | None = None) -> set[str]:
    """Which of `dns` have a binding at the stand-in that Kamailio made."""
    current = bindings if bindings is not None else genesys_bindings()
    return {dn for dn in dns if any(is_forwarded_contact(b["contact"]) for b in current.get(dn, []))}


def restart_standin(reassert: bool = False) -> None:
    """Forget every binding at the stand-in (it keeps them in memory only). Asterisk's static
    registrations, if any, are sent again; with `reassert`, Kamailio's forwarded ones too."""
    compose("restart", "genesys", project=STANDIN_PROJECT, timeout=120)
    # A restart empties the registrar: once its RPC answers, whatever it holds is new.
    wait_for("the stand-in back", lambda: _bindings_or_none() is not None, timeout=30)
    state = gateway_state()
    static = sorted(dn for dn, r in state["asterisk"]["registrations"].items() if r)
    if static:
        asterisk_cli("pjsip send register *all")
        wait_for(
            f"{len(static)} static registrations at the stand-in",
            lambda: set(_bindings_or_none() or {}) >= set(static),
            timeout=30 + len(static) / 50,
        )
    if reassert and state["services"].get("kamailio"):
        forwarded = sorted(state["kamailio"]["forwarded"])
        kamailio_switch_action("reassert")
        if forwarded:
            wait_for(
                f"{len(forwarded)} forwarded registrations at the stand-in",
                lambda: len(forwarded_bound(forwarded, _bindings_or_none() or {})) == len(forwarded),
                timeout=30,
            )


# Registrar behaviours the stand-in plays (its own settings, roles/lab_genesys). The collection is
# never told which one: the switch reads it from Genesys's answers.
STANDIN_BEHAVIOURS: dict[str, dict[str, Any]] = {
    "several-rfc3261": {"lab_genesys_contacts": "several", "lab_genesys_contact_matching": "rfc3261"},
    "several-string": {"lab_genesys_contacts": "several", "lab_genesys_contact_matching": "string"},
    "replace": {"lab_genesys_contacts": "replace"},
}
# What the lab's stand-in plays when a test does not say (roles/lab_genesys/defaults).
STANDIN_DEFAULT = "several-rfc3261"


def standin_settings(behaviour: str, **more: Any) -> dict[str, Any]:
    """lab.yml's extra vars for the stand-in playing `behaviour`, with `more` lab_genesys_* settings."""
    return {**STANDIN_BEHAVIOURS[behaviour], **more}


@contextmanager
def standin_registrar(behaviour: str, **more: Any) -> Iterator[str]:
    """The stand-in playing `behaviour` (STANDIN_BEHAVIOURS) with `more` lab_genesys_* settings
    (yielded). Afterwards the lab's default stand-in again, with no binding left from the test,
    in kamailio mode."""
    result = run_playbook("lab.yml", standin_settings(behaviour, **more))
    assert result.returncode == 0, result.stdout[-3000:]
    try:
        yield behaviour
    finally:
        if behaviour != STANDIN_DEFAULT or more:
            # lab.yml recreates the stand-in with its own settings: no binding survives that.
            result = run_playbook("lab.yml")
            assert result.returncode == 0, result.stdout[-3000:]
            ensure_mode("kamailio")
