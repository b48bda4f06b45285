#!/usr/bin/env python3
"""Pre-flight of a mode switch: have the daemons themselves check the rendered configs.

    preflight_configs.py --image IMG [--stage DIR] [--bundle bundle.json --keys KEYDIR]
                         --address ADDR --mode kamailio --dns 1002,1003

DIR holds what the switch is about to install: nginx/ (nginx.conf, tls/), kamailio/
(kamailio-proxy.cfg), asterisk/etc/. Without --stage, a private temporary directory, removed
at the end. With --bundle, DIR is filled from that JSON file ({path relative to DIR:
content}, removed once read) and Asterisk's DTLS keys are copied from KEYDIR into
asterisk/etc/keys/. The three daemons check at the same time, each in a
throwaway container of the
gateway image with no network (the gateway's address is added to its loopback), so nothing
on the host is touched or contacted:
  nginx     nginx -t
  Kamailio  kamailio -c, then a real start for 2 s (fix-up errors such as a bad regular
            expression pass -c and only show at start), which must log no ERROR
  Asterisk  a real boot with the rendered /etc/asterisk: no ERROR line (Asterisk drops a bad
            object and keeps running), every DN's endpoint loaded, and the mode's
            registrations (one per DN in static mode, none in kamailio mode)
Prints one line per check; exits 1 naming every problem found.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def unpack(stage: Path, bundle: Path, keys: Path | None) -> None:
    """Write the bundle's files under stage (owner-only), then add the DTLS keys."""
    files: dict[str, str] = json.loads(bundle.read_text())
    bundle.unlink()
    for relative, content in files.items():
        target = stage / relative
        if stage.resolve() not in target.resolve().parents:
            raise SystemExit(f"bundle path outside the staging directory: {relative}")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_text(content)
        target.chmod(0o600)
    if keys is not None and keys.is_dir():
        shutil.copytree(keys, stage / "asterisk/etc/keys", dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True)
    parser.add_argument("--stage", type=Path, help="the staging directory (default: a temporary one)")
    parser.add_argument("--address", required=True, help="the gateway address the configs bind")
    parser.add_argument("--mode", choices=["kamailio", "static"], required=True)
    parser.add_argument("--dns", default="", help="comma-separated DNs")
    parser.add_argument("--bundle", type=Path, help="JSON {path: content} to unpack into --stage first")
    parser.add_argument("--keys", type=Path, help="Asterisk's DTLS key directory, copied to asterisk/etc/keys")
    args = parser.parse_args(argv)
    dns = [dn for dn in args.dns.split(",") if dn]
    stage = args.stage or Path(tempfile.mkdtemp(prefix="webrtc-preflight."))
    try:
        if args.bundle is not None:
            unpack(stage, args.bundle, args.keys)
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                "nginx": pool.submit(check_nginx, args.image, stage, args.address),
                "kamailio": pool.submit(check_kamailio, args.image, stage, args.address),
                "asterisk": pool.submit(check_asterisk, args.image, stage, args.address, args.mode, dns),
            }
            results = {daemon: future.result() for daemon, future in futures.items()}
    finally:
        if args.bundle is not None:
            args.bundle.unlink(missing_ok=True)
        if args.stage is None:
            shutil.rmtree(stage, ignore_errors=True)
    for daemon, problems in results.items():
        print(f"{daemon}: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  - {problem}")
    print(json.dumps({"problems": [p for problems in results.values() for p in problems]}))
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
