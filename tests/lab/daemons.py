"""Let the real daemons judge rendered configs, in throwaway containers of the gateway image.

Every container runs with ``--network none`` (loopback only: 127.0.0.0/8 is there, so the lab's
127.0.0.54 and 127.0.0.81 can be bound) and ``--rm`` or a unique name removed in a ``finally``:
nothing here can reach or disturb a running lab.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from .rendering import ROLES, lab_variables

IMAGE: Final = str(lab_variables("kamailio")["gateway_image"])
ASTERISK_FILES: Final = ROLES / "asterisk" / "files" / "etc"
ASTERISK_BOOT_TIMEOUT: Final = 30.0
KAMAILIO_RUN_SECONDS: Final = 2
_MARK: Final = "::unit-daemons::"


def docker(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def _run_isolated(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``docker run`` of the gateway image with no network and no pull, removed on exit."""
    return docker("run", "--rm", "--network", "none", "--pull", "never", *args, timeout=timeout)


def unavailable_reason() -> str | None:
    """Why the daemon checks cannot run here, or None when they can."""
    if shutil.which("docker") is None:
        return "daemon checks need the docker CLI, which is not on PATH"
    try:
        result = docker("image", "inspect", "--format", "{{.Id}}", IMAGE, timeout=30)
    except subprocess.TimeoutExpired:
        return "daemon checks skipped: `docker image inspect` timed out (is the docker daemon up?)"
    if result.returncode != 0:
        return f"daemon checks need the gateway image {IMAGE}, which docker does not have (build it with the playbooks)"
    return None


# --------------------------------------------------------------------------- nginx


@dataclass(frozen=True)
class NginxResult:
    returncode: int
    output: str


def self_signed_pair(certificate: Path, key: Path) -> None:
    """A throwaway EC certificate and key (one day, CN=t), side by side in one directory."""
    directory = certificate.parent
    if key.parent != directory:
        raise ValueError("the certificate and the key go to one directory")
    directory.mkdir(parents=True, exist_ok=True)
    prefix: list[str] = []
    if shutil.which("openssl") is None:  # the gateway image has one
        prefix = ["docker", "run", "--rm", "--network", "none", "--pull", "never", "-v", f"{directory}:{directory}"]
        prefix.append(IMAGE)
    request = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
    request += ["-subj", "/CN=t", "-keyout", str(key), "-out", str(certificate)]
    subprocess.run(
        [*prefix, "openssl", *request],
        capture_output=True,
        check=True,
        timeout=60,
    )


def nginx_test(
    config: str, workdir: Path, *, container_dir: str, tls_dir: str, certificate: str, key: str
) -> NginxResult:
    """``nginx -t`` of ``config`` mounted at ``container_dir``, with a throwaway TLS pair in ``tls_dir``."""
    tls_relative = PurePosixPath(tls_dir).relative_to(container_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nginx.conf").write_text(config, encoding="utf-8")
    self_signed_pair(workdir / tls_relative / certificate, workdir / tls_relative / key)
    conf = f"{container_dir}/nginx.conf"
    result = _run_isolated("-v", f"{workdir}:{container_dir}:ro", IMAGE, "nginx", "-t", "-c", conf)
    return NginxResult(result.returncode, result.stdout + result.stderr)


# --------------------------------------------------------------------------- Kamailio


@dataclass(frozen=True)
class KamailioResult:
    parse_returncode: int
    parse_output: str
    alive: bool
    run_output: str


_KAMAILIO_SCRIPT: Final = f"""
cfg=/etc/webrtc/kamailio/kamailio.cfg
kamailio -c -f "$cfg" >/tmp/parse.log 2>&1
parse_rc=$?
kamailio -DD -E -m 64 -M 8 -f "$cfg" >/tmp/run.log 2>&1 &
pid=$!
sleep {KAMAILIO_RUN_SECONDS}
if kill -0 "$pid" 2>/dev/null; then alive=yes; else alive=no; fi
# The log up to now: stopping Kamailio makes its processes log CRITICAL EOFs on their sockets.
cp /tmp/run.log /tmp/run.snapshot
echo "{_MARK}parse-rc $parse_rc"
echo "{_MARK}alive $alive"
echo "{_MARK}parse-log"
cat /tmp/parse.log
echo "{_MARK}run-log"
cat /tmp/run.snapshot
"""


def kamailio_check(config: str, workdir: Path, includes: dict[str, str] | None = None) -> KamailioResult:
    """``kamailio -c`` of ``config`` (with the files it includes beside it), then Kamailio started
    for real for a moment (fixups run only then)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "kamailio.cfg").write_text(config, encoding="utf-8")
    for name, text in (includes or {}).items():
        (workdir / name).write_text(text, encoding="utf-8")
    result = _run_isolated("-v", f"{workdir}:/etc/webrtc/kamailio:ro", IMAGE, "sh", "-c", _KAMAILIO_SCRIPT)
    fields: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in result.stdout.splitlines():
        if line.startswith(_MARK):
            name, _, value = line.removeprefix(_MARK).partition(" ")
            if value:
                fields[name] = value
                current = None
            else:
                current = sections.setdefault(name, [])
        elif current is not None:
            current.append(line)
    if "parse-rc" not in fields:
        raise RuntimeError(f"the Kamailio check container failed ({result.returncode}): {result.stderr.strip()}")
    return KamailioResult(
        parse_returncode=int(fields["parse-rc"]),
        parse_output="\n".join(sections.get("parse-log", [])),
        alive=fields.get("alive") == "yes",
        run_output="\n".join(sections.get("run-log", [])),
    )


# --------------------------------------------------------------------------- Asterisk


@dataclass(frozen=True)
class AsteriskResult:
    booted: bool
    boot_log: str
    endpoints: str
    registrations: str
    outputs: dict[str, str] = field(default_factory=dict)  # further CLI commands -> their output


def asterisk_config_dir(rendered: dict[str, str], workdir: Path) -> Path:
    """The role's fixed files plus the rendered ones, as the role lays them out in asterisk/etc."""
    workdir.mkdir(parents=True, exist_ok=True)
    for fixed in sorted(ASTERISK_FILES.iterdir()):
        shutil.copyfile(fixed, workdir / fixed.name)
    for name, text in rendered.items():
        (workdir / name).write_text(text, encoding="utf-8")
    dtls_pair(workdir)
    return workdir


def dtls_pair(etc: Path) -> None:
    """The DTLS certificate and key the asterisk role provides (etc/keys/dtls.crt, dtls.key)."""
    self_signed_pair(etc / "keys" / "dtls.crt", etc / "keys" / "dtls.key")


def _asterisk_cli(name: str, command: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    return docker("exec", name, "asterisk", "-rx", command, timeout=timeout)


def _running(name: str) -> bool:
    state = docker("inspect", "--format", "{{.State.Running}}", name, timeout=15)
    return state.stdout.strip() == "true"


def asterisk_check(config_dir: Path, label: str, commands: tuple[str, ...] = ()) -> AsteriskResult:
    """Boot Asterisk on ``config_dir`` (as /etc/asterisk); its log up to fully booted, and PJSIP's view."""
    name = f"webrtc-unit-asterisk-{label}-{uuid.uuid4().hex[:10]}"
    try:
        started = docker(
            "run", "--detach", "--name", name, "--network", "none", "--pull", "never",
            "-v", f"{config_dir}:/etc/asterisk:ro",
            IMAGE, "asterisk", "-f", "-C", "/etc/asterisk/asterisk.conf",
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"could not start the Asterisk check container: {started.stderr.strip()}")
        booted = False
        deadline = time.monotonic() + ASTERISK_BOOT_TIMEOUT
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                wait = _asterisk_cli(name, "core waitfullybooted", timeout=remaining)
            except subprocess.TimeoutExpired:
                break
            if wait.returncode == 0 and "fully booted" in wait.stdout:
                booted = True
                break
            if not _running(name):
                break
            time.sleep(0.25)
        logs = docker("logs", name, timeout=30)
        messages = docker("exec", name, "cat", "/var/log/asterisk/messages.log", timeout=15)
        boot_log = "\n".join(
            (logs.stdout, logs.stderr, "--- /var/log/asterisk/messages.log ---", messages.stdout, messages.stderr)
        )
        endpoints = _asterisk_cli(name, "pjsip show endpoints") if booted else None
        registrations = _asterisk_cli(name, "pjsip show registrations") if booted else None
        outputs = {command: _asterisk_cli(name, command).stdout for command in commands} if booted else {}
        return AsteriskResult(
            booted=booted,
            boot_log=boot_log,
            endpoints=endpoints.stdout if endpoints else "",
            registrations=registrations.stdout if registrations else "",
            outputs=outputs,
        )
    finally:
        docker("rm", "--force", name, timeout=60)
