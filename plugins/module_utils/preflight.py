"""The mode switch's pre-flight, shared by the ``gateway_preflight`` module: does the gateway host
have what the switch needs, and do nginx, Kamailio and Asterisk accept the rendered configs?

Host (changing nothing):
  - Docker answers and compose v2 (>= 2.18) is installed;
  - every listener the target mode needs is either free or held by the daemon that should own it
    (a port held by another program is a clash the switch would only discover half-way);
  - Genesys answers a SIP OPTIONS over UDP (any SIP response counts: reachable).

Configs: the three daemons check at the same time, each in a throwaway container of the gateway
image with no network (the gateway's address is added to its loopback), so nothing on the host is
touched or contacted:
  nginx     nginx -t
  Kamailio  kamailio -c, then a real start for 2 s (fix-up errors such as a bad regular
            expression pass -c and only show at start), which must log no ERROR
  Asterisk  a real boot with the rendered /etc/asterisk: no ERROR line (Asterisk drops a bad
            object and keeps running), every DN's endpoint loaded, and the mode's
            registrations (one per DN in static mode, none in kamailio mode)
Each returns one message per problem found."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_SS = re.compile(r"^(?P<proto>tcp|udp)\s+\S+\s+\d+\s+\d+\s+(?P<local>\S+):(?P<port>\d+)\s+\S+\s*(?P<users>.*)$")


_WILDCARDS = ("0.0.0.0", "*", "::")  # noqa: S104 - listeners on every address clash too


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def check_docker() -> list[str]:
    if run("docker", "info", "--format", "{{.ServerVersion}}").returncode != 0:
        return ["Docker does not answer on this host (docker info failed)"]
    version = run("docker", "compose", "version", "--short").stdout.strip().lstrip("v")
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    if len(parts) < 2 or tuple(parts) < (2, 18):
        return [f"docker compose v2 >= 2.18 is required (found '{version or 'none'}')"]
    return []


def listeners() -> list[tuple[str, str, int, str]]:
    out = run("ss", "-H", "-lntup").stdout
    found = []
    for line in out.splitlines():
        match = _SS.match(line.strip())
        if match:
            names = re.findall(r'\("([^"]+)"', match.group("users"))
            local = match.group("local").strip("[]")
            found.append((match.group("proto"), local, int(match.group("port")), ",".join(names)))
    return found


def check_ports(wanted: Sequence[Sequence[object]]) -> list[str]:
    problems = []
    current = listeners()
    for proto, address, port, owner in wanted:
        for l_proto, l_address, l_port, l_names in current:
            if l_proto != proto or l_port != port or l_address not in (address, *_WILDCARDS):
                continue
            if str(owner) not in l_names.split(","):
                problems.append(
                    f"{proto} {address}:{port} is needed by {owner} but is held by {l_names or 'an unknown process'}"
                )
    return problems


def check_genesys(target: str, timeout: float = 3.0) -> list[str]:
    host, _, port = target.rpartition(":")
    call_id = secrets.token_hex(8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, int(port)))
        local, local_port = sock.getsockname()
        message = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local}:{local_port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:preflight@{local}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.send(message.encode())
            reply = sock.recv(65535).decode(errors="replace")
        except OSError as exc:
            return [f"Genesys {target} did not answer a SIP OPTIONS within {timeout:.0f} s ({exc.__class__.__name__})"]
    if not reply.startswith("SIP/2.0 "):
        return [f"Genesys {target} answered something that is not SIP"]
    return []


_ERROR = re.compile(r"\b(ERROR|CRITICAL|ALERT)\b|\[(emerg|crit|alert)\]")


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def isolated(image: str, address: str, mounts: list[str], script: str, name: str | None = None) -> list[str]:
    """docker run args for `script` in a network-less container that owns `address`."""
    args = ["run", "--network", "none", "--cap-add", "NET_ADMIN", "--pull", "never"]
    args += ["--name", name, "-d"] if name else ["--rm"]
    for mount in mounts:
        args += ["-v", mount]
    prologue = f"ip link set lo up; ip addr add {address}/32 dev lo 2>/dev/null; "
    return [*args, image, "sh", "-c", prologue + script]


def errors(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if _ERROR.search(line)]


def check_nginx(image: str, stage: Path, address: str) -> list[str]:
    result = docker(
        *isolated(image, address, [f"{stage}/nginx:/etc/webrtc/nginx:ro"], "nginx -t -c /etc/webrtc/nginx/nginx.conf")
    )
    if result.returncode != 0:
        return [f"nginx -t rejects nginx.conf: {result.stderr.strip()[-600:]}"]
    return []


def check_kamailio(image: str, stage: Path, address: str) -> list[str]:
    cfg = "/etc/webrtc/kamailio/kamailio-proxy.cfg"
    mount = [f"{stage}/kamailio:/etc/webrtc/kamailio:ro"]
    parsed = docker(*isolated(image, address, mount, f"kamailio -c -f {cfg}"))
    if parsed.returncode != 0:
        return [f"kamailio -c rejects kamailio-proxy.cfg: {' | '.join(errors(parsed.stderr))[-800:]}"]
    script = (
        f"mkdir -p /run/kamailio; kamailio -DD -E -m 64 -M 8 -f {cfg} & pid=$!; sleep 2; "
        "if kill -0 $pid 2>/dev/null; then echo KAMAILIO-RUNNING >&2; kill $pid; fi; wait $pid 2>/dev/null; true"
    )
    started = docker(*isolated(image, address, mount, script))
    log = started.stderr.split("KAMAILIO-RUNNING")[0]
    problems = [f"Kamailio logged at start: {line}" for line in errors(log)]
    if "KAMAILIO-RUNNING" not in started.stderr:
        problems.append(f"Kamailio exited at start: {' | '.join(errors(started.stderr))[-800:]}")
    return problems


def check_asterisk(image: str, stage: Path, address: str, mode: str, dns: list[str]) -> list[str]:
    name = f"webrtc-preflight-asterisk-{uuid.uuid4().hex[:8]}"
    mount = [f"{stage}/asterisk/etc:/etc/asterisk:ro"]
    started = docker(*isolated(image, address, mount, "exec asterisk -f -C /etc/asterisk/asterisk.conf", name=name))
    try:
        if started.returncode != 0:
            return [f"Asterisk container did not start: {started.stderr.strip()[-400:]}"]
        deadline = time.monotonic() + 40
        while True:  # the control socket appears a moment after the container starts
            booted = docker("exec", name, "asterisk", "-rx", "core waitfullybooted", timeout=40)
            if booted.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if booted.returncode != 0:
            return [f"Asterisk did not finish booting: {docker('logs', name).stdout[-600:]}"]
        time.sleep(0.5)
        log = docker("logs", name).stdout + docker("exec", name, "cat", "/var/log/asterisk/messages.log").stdout
        problems = [f"Asterisk logged at start: {line}" for line in errors(log)]
        endpoints = docker("exec", name, "asterisk", "-rx", "pjsip show endpoints").stdout
        missing = [dn for dn in dns if not re.search(rf"Endpoint:\s+{re.escape(dn)}(/|\s)", endpoints)]
        if missing:
            problems.append(f"Asterisk did not load the endpoints of DN(s) {', '.join(missing)}")
        registrations = docker("exec", name, "asterisk", "-rx", "pjsip show registrations").stdout
        loaded = set(re.findall(r"genesys-reg-(\d+)/", registrations))
        wanted = set(dns) if mode == "static" else set()
        if loaded != wanted:
            problems.append(
                f"Asterisk loaded registrations for {sorted(loaded) or 'no DN'}, the {mode} mode needs "
                f"{sorted(wanted) or 'none'}"
            )
        return problems
    finally:
        docker("rm", "--force", name)


def unpack(stage: Path, files: Mapping[str, str], keys: Path | None) -> None:
    """Write the rendered files under stage (owner-only), then add Asterisk's DTLS keys."""
    for relative, content in files.items():
        target = stage / relative
        if stage.resolve() not in target.resolve().parents:
            raise ValueError(f"a config path outside the staging directory: {relative}")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_text(content)
        target.chmod(0o600)
    if keys is not None and keys.is_dir():
        shutil.copytree(keys, stage / "asterisk/etc/keys", dirs_exist_ok=True)


def check_host(ports: Sequence[Sequence[object]], genesys: str) -> list[str]:
    """The host's problems; the configs are not checked when Docker itself is missing."""
    return check_docker() + check_ports(ports) + check_genesys(genesys)


def check_configs(
    image: str, files: Mapping[str, str], keys: Path | None, *, address: str, mode: str, dns: Sequence[str]
) -> dict[str, list[str]]:
    """{daemon: problems} for nginx, Kamailio and Asterisk, checked at the same time on a private
    staging copy of the files (removed afterwards)."""
    stage = Path(tempfile.mkdtemp(prefix="webrtc-preflight."))
    try:
        unpack(stage, files, keys)
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                "nginx": pool.submit(check_nginx, image, stage, address),
                "kamailio": pool.submit(check_kamailio, image, stage, address),
                "asterisk": pool.submit(check_asterisk, image, stage, address, mode, list(dns)),
            }
            return {daemon: future.result() for daemon, future in futures.items()}
    finally:
        shutil.rmtree(stage, ignore_errors=True)
