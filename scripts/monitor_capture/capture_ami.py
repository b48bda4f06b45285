#!/usr/bin/env python3
"""Capture real AMI traffic of Asterisk 22 for the registration monitor's unit tests.

    .venv/bin/python scripts/monitor_capture/capture_ami.py [--out tests/unit/monitor/fixtures]

Host side (venv Python): renders the asterisk and kamailio roles' templates for the lab inventory
with every address moved to 127.0.0.1 (tests/lab/rendering.py, the renderer of the unit suite)
plus the asterisk role's fixed files, and runs this same script inside a throwaway container of
the gateway image:

    docker run --rm --network none --pull never -v <tmp>/etc:/etc/asterisk \
        -v <tmp>/kamailio:/etc/webrtc/kamailio:ro -v <tmp>/capture:/capture \
        webrtc-genesys/gateway:1 python3 /capture/capture_ami.py --inside /capture

Container side (the image's python3, stdlib only): starts Asterisk on the kamailio-mode config,
Kamailio on the rendered kamailio-proxy.cfg (SIP 127.0.0.1:5070, JSON-RPC 127.0.0.1:5071) and a
tiny UDP "Genesys" on 127.0.0.2:5090 (200 OK for DN 1002, 403 for DN 1003, silence when told),
logs in to AMI with a raw socket and records every byte AMI sends, cut at message boundaries,
one file per phase (``NN-name.ami``). A UDP client REGISTERs DNs with digest auth through
Kamailio, which relays to Asterisk and mirrors at the "Genesys"; after such phases Kamailio's
reply to ``htable.dump fwdres`` is saved as ``NN-name.htable.json`` (the HTTP body, unchanged).
The static registrations are switched on and off the way the switch playbooks do it
(pjsip.conf swapped, ``module reload res_pjsip.so``); Asterisk is restarted once.
``manifest.json`` lists the phases with what was sent. Nothing leaves the container's own
network namespace; the container is removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

IMAGE = "webrtc-genesys/gateway:1"
AMI_USER = "monitor"
AMI_SECRET = "capture-ami-secret"  # throwaway container, loopback only
DNS = {"1002": "capture-1002-secret", "1003": "capture-1003-secret"}
GENESYS_ADDRESS = "127.0.0.2"
GENESYS_PORT = 5090
KAMAILIO_PORT = 5070
KAMAILIO_RPC = "http://127.0.0.1:5071/RPC"
MARKER = "::capture::"
# The repository, on the host (in the container, where this file sits in /capture: "/", unused).
ROOT = Path(__file__).resolve().parent.parent.parent
FAREND = ROOT / "tests" / "lab" / "farend.py"
FIXTURES = ROOT / "tests" / "unit" / "monitor" / "fixtures"


# --------------------------------------------------------------------------- host side


def render_configs(etc: Path) -> None:
    """The asterisk role's configs (pjsip.conf.<mode> for both modes) and kamailio-proxy.cfg, on 127.0.0.1."""
    from lab.daemons import dtls_pair  # noqa: PLC0415 (host side only: the container has no Ansible)
    from lab.rendering import ROLES, lab_variables, render, template_path  # noqa: PLC0415

    overrides: dict[str, Any] = {
        "webrtc_gateway_address": "127.0.0.1",
        "webrtc_kamailio_rpc_address": "127.0.0.1",
        # Not the gateway's address: Asterisk identifies Genesys's calls by it.
        "webrtc_genesys_address": GENESYS_ADDRESS,
        "webrtc_genesys_port": GENESYS_PORT,
        "asterisk_ami_address": "127.0.0.1",
        "asterisk_ami_user": AMI_USER,
        "asterisk_ami_secret": AMI_SECRET,
        "webrtc_dns": [{"dn": dn, "password": password} for dn, password in DNS.items()],
    }
    kamailio = etc.parent / "kamailio"
    kamailio.mkdir(parents=True, exist_ok=True)
    text = render(template_path("kamailio", "kamailio-proxy.cfg.j2"), lab_variables("kamailio", **overrides))
    (kamailio / "kamailio-proxy.cfg").write_text(text, encoding="utf-8")
    etc.mkdir(parents=True, exist_ok=True)
    for fixed in sorted((ROLES / "asterisk" / "files" / "etc").iterdir()):
        shutil.copyfile(fixed, etc / fixed.name)
    for template in sorted((ROLES / "asterisk" / "templates").glob("*.j2")):
        name = template.name.removesuffix(".j2")
        for mode in ("kamailio", "static"):
            text = render(template_path("asterisk", template.name), lab_variables(mode, **overrides))
            if name == "pjsip.conf":
                (etc / f"pjsip.conf.{mode}").write_text(text, encoding="utf-8")
            if mode == "kamailio":
                (etc / name).write_text(text, encoding="utf-8")
    dtls_pair(etc)
    rendered = [p for p in (*etc.iterdir(), *kamailio.iterdir()) if p.is_file()]
    if any("127.0.0.54" in path.read_text(encoding="utf-8") for path in rendered):
        raise SystemExit("a lab address is left in the capture configs")


def run_capture(image: str, work: Path, script: str, *, mounts: list[str], out: Path, stale: list[str]) -> bool:
    """Run /capture/<script> --inside /capture in a throwaway network-less container of `image`
    (work/etc is /etc/asterisk, work/capture is /capture, plus `mounts`); copy what it wrote to
    work/capture/out into `out`, replacing the files matching the `stale` patterns there.
    False when the container failed (its output is printed)."""
    capture = work / "capture"
    extra = [arg for mount in mounts for arg in ("-v", mount)]
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--pull", "never",
         "-v", f"{work / 'etc'}:/etc/asterisk", *extra, "-v", f"{capture}:/capture",
         image, "python3", f"/capture/{script}", "--inside", "/capture"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        print(f"capture container failed ({result.returncode}); work dir kept: {work}", file=sys.stderr)
        return False
    out.mkdir(parents=True, exist_ok=True)
    for old in [path for pattern in stale for path in out.glob(pattern)]:
        old.unlink()
    for path in sorted((capture / "out").iterdir()):
        shutil.copyfile(path, out / path.name)
    print(f"fixtures written to {out}")
    return True


def host_main(out: Path, image: str, keep: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="monitor-capture-"))
    try:
        render_configs(work / "etc")
        (work / "capture").mkdir()
        shutil.copyfile(__file__, work / "capture" / "capture_ami.py")
        shutil.copyfile(FAREND, work / "capture" / "farend.py")  # the digest code
        mounts = [f"{work / 'kamailio'}:/etc/webrtc/kamailio:ro"]
        if not run_capture(image, work, "capture_ami.py", mounts=mounts, out=out, stale=["*.ami", "*.htable.json"]):
            keep = True
            return 1
        return 0
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- container side: SIP


def _header(text: str, name: str) -> str:
    for line in text.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def digest_authorization(challenge: str, username: str, password: str, uri: str, method: str = "REGISTER") -> str:
    """Authorization header answering a WWW-Authenticate challenge: the lab's one digest
    implementation (tests/lab/farend.py, stdlib only, copied beside this script in the container)."""
    from farend import digest_authorization as farend_digest  # noqa: PLC0415 (container side only)

    return "Authorization: " + farend_digest(challenge, username, password, method, uri)


class SipClient:
    """A UDP SIP client REGISTERing DNs through Kamailio's SIP listener, with digest auth."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.calls: dict[str, tuple[str, str, int]] = {}  # dn -> call-id, contact, cseq

    def _request(self, dn: str, expires: int, authorization: str | None) -> str:
        fresh = (secrets.token_hex(10), f"sip:{secrets.token_hex(4)}@127.0.0.1:{self.port}", 0)
        call_id, contact, cseq = self.calls.get(dn, fresh)
        cseq += 1
        self.calls[dn] = (call_id, contact, cseq)
        lines = [
            "REGISTER sip:127.0.0.1 SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{dn}@127.0.0.1>;tag={secrets.token_hex(5)}",
            f"To: <sip:{dn}@127.0.0.1>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} REGISTER",
            f"Contact: <{contact}>;expires={expires}",
            f"Expires: {expires}",
            "User-Agent: capture_ami.py",
        ]
        if authorization:
            lines.append(authorization)
        return "\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n"

    def _send(self, message: str) -> str:
        self.sock.sendto(message.encode(), ("127.0.0.1", KAMAILIO_PORT))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            raw = self.sock.recv(65535).decode(errors="replace")
            if re.match(r"^SIP/2\.0 [2-6]\d\d ", raw):
                return raw
        raise TimeoutError("no final response through Kamailio")

    def forget(self, dn: str) -> None:
        """The next REGISTER of ``dn`` comes from a new contact with a new Call-ID (a reconnected client)."""
        self.calls.pop(dn, None)

    def register(self, dn: str, expires: int) -> int:
        first = self._send(self._request(dn, expires, None))
        if first.startswith("SIP/2.0 401"):
            auth = digest_authorization(_header(first, "WWW-Authenticate"), dn, DNS[dn], "sip:127.0.0.1")
            first = self._send(self._request(dn, expires, auth))
        return int(first.split()[1])


def genesys_responder(stop: threading.Event, silent: threading.Event) -> None:
    """A UDP 'Genesys': 200 OK to REGISTERs of DN 1002, 403 Forbidden to DN 1003; nothing while ``silent``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((GENESYS_ADDRESS, GENESYS_PORT))
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            raw, peer = sock.recvfrom(65535)
        except TimeoutError:
            continue
        text = raw.decode(errors="replace")
        if not text.startswith("REGISTER ") or silent.is_set():
            continue
        to = _header(text, "To")
        dn = re.search(r"sip:([^@;>]+)@", to)
        expires = _header(text, "Expires") or "600"
        contact = _header(text, "Contact")
        if dn and dn.group(1) == "1003":
            status, extra = "403 Forbidden", []
        else:
            status = "200 OK"
            extra = [f"Contact: {contact};expires={expires}"] if contact and expires != "0" else []
            extra.append(f"Expires: {expires}")
        vias = [line.partition(":")[2].strip() for line in text.split("\r\n") if line.lower().startswith("via:")]
        lines = [
            f"SIP/2.0 {status}",
            *(f"Via: {via}" for via in vias),
            f"From: {_header(text, 'From')}",
            f"To: {to};tag={secrets.token_hex(4)}",
            f"Call-ID: {_header(text, 'Call-ID')}",
            f"CSeq: {_header(text, 'CSeq')}",
            *extra,
            "Content-Length: 0",
        ]
        sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), peer)
    sock.close()


# --------------------------------------------------------------------------- container side: AMI


class AmiTap:
    """A raw AMI connection that records every received byte, cut at message boundaries, per phase."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""
        self.current: list[bytes] = []
        self.eof = asyncio.Event()
        self.task = asyncio.create_task(self._read())
        self.counter = 0

    @classmethod
    async def open(cls) -> AmiTap:
        reader, writer = await asyncio.open_connection("127.0.0.1", 5038)
        return cls(reader, writer)

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                block, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
                self.current.append(block + b"\r\n\r\n")
        if self.buffer:
            self.current.append(self.buffer)
            self.buffer = b""
        self.eof.set()

    def take(self) -> bytes:
        taken, self.current = self.current, []
        return b"".join(taken)

    def send(self, fields: dict[str, str]) -> str:
        self.counter += 1
        action_id = f"capture-{self.counter}"
        text = "".join(f"{key}: {value}\r\n" for key, value in {**fields, "ActionID": action_id}.items()) + "\r\n"
        self.writer.write(text.encode())
        return action_id

    async def wait_for(self, *needles: str, timeout: float = 15.0) -> None:
        """Until every needle ("a|b": either) has appeared in the current phase (or timeout), then 1 s more."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = b"".join(self.current).decode(errors="replace")
            if all(any(part in text for part in needle.split("|")) for needle in needles):
                break
            await asyncio.sleep(0.05)
        else:
            print(f"{MARKER} timeout waiting for {needles}", flush=True)
        await asyncio.sleep(1.0)

    def close(self) -> None:
        self.writer.close()


class Recorder:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.out.mkdir(parents=True, exist_ok=True)
        self.phases: list[dict[str, Any]] = []

    def save(self, tap: AmiTap, name: str, description: str, sent: list[str], *, htable: bool = False) -> None:
        number = len(self.phases) + 1
        filename = f"{number:02d}-{name}.ami"
        data = tap.take()
        (self.out / filename).write_bytes(data)
        phase: dict[str, Any] = {"file": filename, "description": description, "sent": sent, "bytes": len(data)}
        if htable:
            phase["htable"] = f"{number:02d}-{name}.htable.json"
            (self.out / phase["htable"]).write_bytes(htable_dump())
        self.phases.append(phase)
        print(f"{MARKER} {filename}: {len(data)} bytes", flush=True)

    def finish(self, version: str) -> None:
        manifest = {
            "asterisk_version": version,
            "kamailio_version": kamailio_version(),
            "ami_user": AMI_USER,
            "htable_request": HTABLE_REQUEST.decode(),
            "phases": self.phases,
        }
        (self.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


HTABLE_REQUEST = b'{"jsonrpc":"2.0","method":"htable.dump","params":["fwdres"],"id":1}'


def htable_dump() -> bytes:
    """Kamailio's reply to htable.dump fwdres, the HTTP body as sent."""
    request = urllib.request.Request(KAMAILIO_RPC, data=HTABLE_REQUEST, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body: bytes = response.read()
    return body


def cli(command: str) -> str:
    return subprocess.run(["asterisk", "-rx", command], capture_output=True, text=True, timeout=30, check=False).stdout


def kamailio_version() -> str:
    result = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, timeout=30, check=False)
    return result.stdout.splitlines()[0] if result.stdout else ""


def start_asterisk(log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["asterisk", "-f", "-C", "/etc/asterisk/asterisk.conf"], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "fully booted" in cli("core waitfullybooted"):
            return process
        time.sleep(0.25)
    raise SystemExit("Asterisk did not boot")


def start_kamailio(log: Path) -> subprocess.Popen[bytes]:
    Path("/run/kamailio").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["kamailio", "-DD", "-E", "-m", "64", "-M", "8", "-f", "/etc/webrtc/kamailio/kamailio-proxy.cfg"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            htable_dump()
            return process
        except OSError:
            time.sleep(0.25)
    raise SystemExit("Kamailio did not start")


async def login(tap: AmiTap, secret: str = AMI_SECRET) -> list[str]:
    tap.send({"Action": "Login", "Username": AMI_USER, "Secret": secret, "Events": "on"})
    return [f"Login Username={AMI_USER} Secret=<{'wrong' if secret != AMI_SECRET else 'the configured secret'}>"]


SYNC_COMPLETE = {
    # With no contact at all, Asterisk 22 answers "Response: Error / Message: No Contacts found".
    "PJSIPShowContacts": "Event: ContactListComplete|No Contacts found",
    "PJSIPShowAors": "Event: AorListComplete",
    "PJSIPShowRegistrationsOutbound": "Event: OutboundRegistrationDetailComplete",
}
ALL_SYNCS = tuple(SYNC_COMPLETE)


async def sync(tap: AmiTap, actions: tuple[str, ...] = ALL_SYNCS) -> list[str]:
    for action in actions:
        tap.send({"Action": action})
    await tap.wait_for(*(SYNC_COMPLETE[action] for action in actions))
    return list(actions)


def switch_pjsip(etc: Path, mode: str) -> None:
    shutil.copyfile(etc / f"pjsip.conf.{mode}", etc / "pjsip.conf")
    print(f"{MARKER} reload to {mode}: {cli('module reload res_pjsip.so').strip()}", flush=True)


async def inside_main(root: Path) -> int:
    etc, out = Path("/etc/asterisk"), root / "out"
    shutil.rmtree(out, ignore_errors=True)
    recorder = Recorder(out)
    stop, silent = threading.Event(), threading.Event()
    responder = threading.Thread(target=genesys_responder, args=(stop, silent), daemon=True)
    responder.start()
    asterisk = start_asterisk(root / "asterisk.log")
    kamailio = start_kamailio(root / "kamailio.log")
    version = next(line for line in cli("core show version").splitlines() if line.startswith("Asterisk "))
    client = SipClient()

    tap = await AmiTap.open()
    sent = await login(tap, "not-the-secret")
    await tap.wait_for("Authentication failed", timeout=5)
    await asyncio.wait_for(tap.eof.wait(), 10)
    recorder.save(tap, "login-failed", "Login with a wrong secret; Asterisk closes the session", sent)

    tap = await AmiTap.open()
    sent = await login(tap)
    await tap.wait_for("Event: FullyBooted")
    recorder.save(tap, "login", "Greeting, Login response and FullyBooted of a booted Asterisk (kamailio mode)", sent)

    sent = await sync(tap)
    recorder.save(tap, "sync-empty", "The sync actions with no contact and no static registration", sent, htable=True)

    code = client.register("1002", 600)
    await tap.wait_for("Event: ContactStatus")
    recorder.save(
        tap,
        "register-1002",
        f"REGISTER of DN 1002 through Kamailio (final {code}); Genesys answers 200",
        [],
        htable=True,
    )

    code = client.register("1002", 600)
    await tap.wait_for("Event: SuccessfulAuth", timeout=5)
    await asyncio.sleep(1.0)  # a refresh publishes no ContactStatus: give one the time to show up anyway
    recorder.save(tap, "refresh-1002", f"Refresh REGISTER of DN 1002, same Call-ID and contact (final {code})", [])

    sent = await sync(tap, ("PJSIPShowContacts", "PJSIPShowAors"))
    recorder.save(tap, "sync-registered", "The sync actions with DN 1002 registered", sent)

    code = client.register("1002", 0)
    await tap.wait_for("Event: ContactStatus")
    recorder.save(
        tap, "unregister-1002", f"un-REGISTER (Expires: 0) of DN 1002 through Kamailio (final {code})", [], htable=True
    )

    code = client.register("1003", 600)
    await tap.wait_for("Event: ContactStatus")
    recorder.save(
        tap,
        "register-1003",
        f"REGISTER of DN 1003 through Kamailio (final {code}); Genesys answers 403. Left registered at Asterisk",
        [],
        htable=True,
    )

    client.forget("1003")
    code = client.register("1003", 600)
    await tap.wait_for("ContactStatus: Removed", "ContactStatus: NonQualified")
    recorder.save(
        tap,
        "replace-1003",
        f"REGISTER of DN 1003 from a new contact and Call-ID (a reconnected client); max_contacts=1, "
        f"remove_existing=yes (final {code})",
        [],
    )

    silent.set()
    code = client.register("1002", 600)
    await tap.wait_for("Event: ContactStatus")
    await asyncio.sleep(4.0)  # Kamailio's fr_timer (3 s) runs out: a local timeout, stored as 408
    silent.clear()
    recorder.save(
        tap,
        "register-1002-genesys-silent",
        f"REGISTER of DN 1002 through Kamailio (final {code}); Genesys does not answer (Kamailio times out)",
        [],
        htable=True,
    )

    switch_pjsip(etc, "static")
    await tap.wait_for("Status: Registered", "Status: Rejected", timeout=20)
    recorder.save(
        tap,
        "static-on",
        "pjsip.conf with type=registration per DN, module reload res_pjsip.so: Genesys answers 200 (1002), 403 (1003)",
        ["CLI: module reload res_pjsip.so"],
    )

    sent = await sync(tap)
    recorder.save(tap, "sync-static", "The sync actions in static mode: 1002 Registered, 1003 Rejected", sent)

    switch_pjsip(etc, "kamailio")
    await tap.wait_for("Status: Unregistered", timeout=10)
    recorder.save(
        tap,
        "static-off",
        "pjsip.conf without registrations, module reload res_pjsip.so: Asterisk un-REGISTERs its static contacts",
        ["CLI: module reload res_pjsip.so"],
    )

    sent = await sync(tap, ("PJSIPShowRegistrationsOutbound",))
    recorder.save(tap, "sync-static-off", "PJSIPShowRegistrationsOutbound after the registrations were removed", sent)

    cli("core stop now")
    await asyncio.wait_for(tap.eof.wait(), 30)
    recorder.save(
        tap, "shutdown", "core stop now: what AMI sends before it closes the connection", ["CLI: core stop now"]
    )
    asterisk.wait(timeout=30)

    asterisk = start_asterisk(root / "asterisk.log")
    tap = await AmiTap.open()
    sent = await login(tap)
    await tap.wait_for("Event: FullyBooted")
    recorder.save(tap, "restart-login", "Login after Asterisk was restarted", sent)
    sent = await sync(tap)
    recorder.save(tap, "restart-sync", "The sync actions after the restart: the contacts survived (astdb)", sent)
    tap.close()

    recorder.finish(version)
    cli("core stop now")
    asterisk.wait(timeout=30)
    kamailio.terminate()
    kamailio.wait(timeout=30)
    stop.set()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside is not None:
        return asyncio.run(inside_main(args.inside))
    return host_main(args.out, args.image, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
