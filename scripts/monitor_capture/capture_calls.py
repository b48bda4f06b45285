#!/usr/bin/env python3
"""Capture real AMI traffic of calls through Asterisk 22 for the registration monitor's unit tests.

    .venv/bin/python scripts/monitor_capture/capture_calls.py [--out tests/unit/monitor/fixtures/calls] [--keep]

Host side (venv Python): renders the asterisk role's configs the way capture_ami.py does (kamailio
mode, every address on loopback, "Genesys" on 127.0.0.2:5090), then adds two capture-only changes:

- ``pjsip.conf``: an overlay that turns DN 1002's endpoint into a plain-RTP one (``webrtc=no`` and
  the options webrtc=yes implies switched off), so a plain SIP UA can be the agent. Nothing else of
  the endpoint changes (context, auth, AOR, codecs).
- ``manager.conf.call``: the role's AMI user with ``call`` added to ``read``. The role grants
  ``read=system,reporting,security``, under which Asterisk sends no call event at all (no
  Newchannel, DialBegin/DialEnd, Hangup): the first phases are captured with the role's
  permissions and show it; then ``manager.conf`` is swapped and reloaded and the monitor user logs
  in again.

It runs this same script inside a throwaway container of the gateway image:

    docker run --rm --network none --pull never -v <tmp>/etc:/etc/asterisk -v <tmp>/capture:/capture \
        webrtc-genesys/gateway:1 python3 /capture/capture_calls.py --inside /capture

Container side (the image's python3, stdlib only): Asterisk on the rendered configs; two instances
of tests/lab/farend.py (a SIP UA with its own RTP): "Genesys" on 127.0.0.2:5090 (the address the
endpoint ``genesys`` is identified by) and the agent 1002 on 127.0.0.3, REGISTERed straight at
Asterisk (127.0.0.1:5060) with digest auth. It logs in to AMI with a raw socket, records every
byte AMI sends, cut at message boundaries, one file per phase (``NN-name.ami``), and writes
``manifest.json``: versions, the overlay, and per phase what was sent, the SIP outcome each far end
saw and a description. Kamailio is not started: the calls do not go through it (Genesys reaches
Asterisk's contact directly in kamailio mode). Nothing leaves the container's own network
namespace; the container is removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import re
import secrets
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__:  # imported by the unit tests: capture_ami is its sibling module, under its plain name too
    sys.modules.setdefault("capture_ami", importlib.import_module(f"{__package__}.capture_ami"))
# Run as a script (on the host, or in the container under /capture), capture_ami.py is beside it.
from capture_ami import (
    AMI_USER,
    DNS,
    FAREND,
    FIXTURES,
    GENESYS_ADDRESS,
    GENESYS_PORT,
    IMAGE,
    MARKER,
    AmiTap,
    _header,
    cli,
    digest_authorization,
    login,
    render_configs,
    run_capture,
    start_asterisk,
)

AGENT = "1002"  # registered from the agent far end (plain RTP through the overlay)
OFFLINE_AGENT = "1003"  # never registered: Genesys's call for it is refused before Dial
AGENT_ADDRESS = "127.0.0.3"
ASTERISK_SIP = ("127.0.0.1", 5060)
NUMBER = "5551000"  # in the allow list (^[0-9]{2,15}$): sent to Genesys
REFUSED_NUMBER = "+4930123456"  # a dialplan extension (_[0-9*#+]!) outside the allow list: Hangup(21)
GENESYS_CALLER = "5550100"  # the calling number Genesys presents

OVERLAY = f"""
; ---- capture_calls.py only: DN {AGENT} as a plain-RTP SIP UA (tests/lab/farend.py), not WebRTC ----
[{AGENT}](+type=endpoint)
webrtc=no
media_encryption=no
ice_support=no
use_avpf=no
rtcp_mux=no
"""


# --------------------------------------------------------------------------- host side


def prepare_configs(etc: Path) -> None:
    """capture_ami's rendering, plus the DN overlay and a manager.conf that grants ``read=...,call``."""
    render_configs(etc)
    with (etc / "pjsip.conf").open("a", encoding="utf-8") as pjsip:
        pjsip.write(OVERLAY)
    role = (etc / "manager.conf").read_text(encoding="utf-8")
    read = re.findall(r"^read=(.*)$", role, flags=re.MULTILINE)
    if len(read) != 1:
        raise SystemExit("manager.conf: expected exactly one read= line")
    classes = [c for c in read[0].split(",") if c != "call"]
    without = re.sub(r"^read=.*$", "read=" + ",".join(classes), role, flags=re.MULTILINE)
    (etc / "manager.conf.role").write_text(without, encoding="utf-8")
    granted = re.sub(r"^read=.*$", "read=" + ",".join([*classes, "call"]), role, flags=re.MULTILINE)
    (etc / "manager.conf.call").write_text(granted, encoding="utf-8")


def host_main(out: Path, image: str, keep: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="monitor-calls-capture-"))
    try:
        prepare_configs(work / "etc")
        capture = work / "capture"
        capture.mkdir()
        here = Path(__file__).resolve().parent
        for script in (here / "capture_ami.py", here / "capture_calls.py", FAREND):
            shutil.copyfile(script, capture / script.name)
        if not run_capture(image, work, "capture_calls.py", mounts=[], out=out, stale=["*.ami", "manifest.json"]):
            keep = True
            return 1
        return 0
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- container side


def register(dn: str, contact: str, expires: int = 600) -> int:
    """REGISTER ``dn`` straight at Asterisk (from the agent's address) with digest auth; the final code."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((AGENT_ADDRESS, 0))
    port = sock.getsockname()[1]
    call_id = secrets.token_hex(10)
    try:
        authorization = ""
        for cseq in (1, 2):
            lines = [
                f"REGISTER sip:{ASTERISK_SIP[0]} SIP/2.0",
                f"Via: SIP/2.0/UDP {AGENT_ADDRESS}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport",
                "Max-Forwards: 70",
                f"From: <sip:{dn}@{ASTERISK_SIP[0]}>;tag={secrets.token_hex(5)}",
                f"To: <sip:{dn}@{ASTERISK_SIP[0]}>",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER",
                f"Contact: {contact};expires={expires}",
                f"Expires: {expires}",
                "User-Agent: capture_calls.py",
                *([authorization] if authorization else []),
                "Content-Length: 0",
            ]
            sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), ASTERISK_SIP)
            sock.settimeout(5)
            while True:
                raw = sock.recv(65535).decode(errors="replace")
                if re.match(r"^SIP/2\.0 [2-6]\d\d ", raw):
                    break
            code = int(raw.split()[1])
            if code != 401 or authorization:
                return code
            authorization = digest_authorization(
                _header(raw, "WWW-Authenticate"), dn, DNS[dn], f"sip:{ASTERISK_SIP[0]}"
            )
        return code
    finally:
        sock.close()


class CallRecorder:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.out.mkdir(parents=True, exist_ok=True)
        self.phases: list[dict[str, Any]] = []

    def save(
        self,
        tap: AmiTap,
        name: str,
        description: str,
        sent: list[str],
        *,
        permissions: str,
        sip: dict[str, Any] | None = None,
    ) -> None:
        number = len(self.phases) + 1
        filename = f"{number:02d}-{name}.ami"
        data = tap.take()
        (self.out / filename).write_bytes(data)
        phase: dict[str, Any] = {
            "file": filename,
            "description": description,
            "sent": sent,
            "read": permissions,
            "sip": sip or {},
            "bytes": len(data),
        }
        self.phases.append(phase)
        print(f"{MARKER} {filename}: {len(data)} bytes, sip {sip or {}}", flush=True)

    def finish(self, version: str, read: dict[str, str]) -> None:
        manifest = {
            "asterisk_version": version,
            "ami_user": AMI_USER,
            "read": read,
            "agent": AGENT,
            "offline_agent": OFFLINE_AGENT,
            "genesys": f"{GENESYS_ADDRESS}:{GENESYS_PORT}",
            "agent_address": AGENT_ADDRESS,
            "number": NUMBER,
            "refused_number": REFUSED_NUMBER,
            "genesys_caller": GENESYS_CALLER,
            "pjsip_overlay": OVERLAY.strip(),
            "phases": self.phases,
        }
        (self.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def count(tap: AmiTap, needle: str) -> int:
    return b"".join(tap.current).decode(errors="replace").count(needle)


async def wait_count(tap: AmiTap, needles: dict[str, int], timeout: float = 20.0, settle: float = 1.0) -> None:
    """Until each needle appeared at least that many times in the current phase, then ``settle`` s more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(count(tap, needle) >= times for needle, times in needles.items()):
            break
        await asyncio.sleep(0.05)
    else:
        print(f"{MARKER} timeout waiting for {needles}", flush=True)
    await asyncio.sleep(settle)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("a far end did not reach the expected state")
        await asyncio.sleep(0.05)


HANGUP = "Event: Hangup\r\n"
ANSWERED = {"DialStatus: ANSWER": 1, "Event: BridgeEnter": 2}
SHOW_CHANNELS_DONE = "Event: CoreShowChannelsComplete"


async def show_channels(tap: AmiTap) -> list[str]:
    tap.send({"Action": "CoreShowChannels"})
    await wait_count(tap, {SHOW_CHANNELS_DONE: 1}, settle=0.5)
    return ["CoreShowChannels"]


async def inside_main(root: Path) -> int:
    from farend import FarEnd  # noqa: PLC0415  (copied next to this script in the container)

    etc, out = Path("/etc/asterisk"), root / "out"
    shutil.rmtree(out, ignore_errors=True)
    recorder = CallRecorder(out)
    role_read = _read_line(etc / "manager.conf.role")
    call_read = _read_line(etc / "manager.conf.call")
    asterisk = start_asterisk(root / "asterisk.log")
    version = next(line for line in cli("core show version").splitlines() if line.startswith("Asterisk "))
    endpoint = cli(f"pjsip show endpoint {AGENT}")
    if not re.search(r"\bwebrtc\s*:\s*(no|false)\b", endpoint) or not re.search(
        r"media_encryption\s*:\s*no\b", endpoint
    ):
        raise SystemExit(f"the overlay did not apply to endpoint {AGENT}:\n{endpoint}")

    genesys = FarEnd(bind=GENESYS_ADDRESS, sip_port=GENESYS_PORT, user="genesys")
    agent = FarEnd(bind=AGENT_ADDRESS, auth=(AGENT, DNS[AGENT]), user=AGENT)

    def genesys_calls(dn: str = AGENT) -> Any:
        return genesys.invite(f"sip:{dn}@{ASTERISK_SIP[0]}:{ASTERISK_SIP[1]}", from_user=GENESYS_CALLER)

    def agent_calls(number: str = NUMBER) -> Any:
        return agent.invite(f"sip:{number}@{ASTERISK_SIP[0]}:{ASTERISK_SIP[1]}", from_user=AGENT)

    try:
        # ---- the role's AMI permissions: no call events
        tap = await AmiTap.open()
        sent = await login(tap)
        await tap.wait_for("Event: FullyBooted")
        recorder.save(tap, "role-login", "Login with the role's manager.conf", sent, permissions=role_read)

        code = register(AGENT, agent.contact)
        await tap.wait_for("Event: ContactStatus")
        recorder.save(
            tap,
            "register-1002",
            f"REGISTER of DN {AGENT} straight at Asterisk from {AGENT_ADDRESS} (final {code})",
            [],
            permissions=role_read,
            sip={"register": code},
        )

        agent.serve(answer_after=0.5, behaviour="answer")
        call = genesys_calls()
        answered = call.wait_answered(15)
        await asyncio.sleep(2.0)
        recorder.save(
            tap,
            "role-inbound-answered",
            f"Genesys calls DN {AGENT}, the agent answers, 2 s of media, under the role's read permissions: "
            "no call event reaches the monitor's session",
            [],
            permissions=role_read,
            sip={"genesys_invite": call.final_status, "answered": answered},
        )
        sent = await show_channels(tap)
        recorder.save(
            tap,
            "role-sync-inbound-call",
            "CoreShowChannels during that call: the action works with the role's write=system,reporting",
            sent,
            permissions=role_read,
        )
        bye = call.bye()
        await asyncio.sleep(3.0)
        recorder.save(
            tap,
            "role-inbound-ended",
            "Genesys hangs up that call: again no call event under the role's read permissions",
            [],
            permissions=role_read,
            sip={"genesys_bye": bye},
        )
        tap.close()

        # ---- read=...,call from here on
        shutil.copyfile(etc / "manager.conf.call", etc / "manager.conf")
        print(f"{MARKER} manager reload: {cli('manager reload').strip()}", flush=True)
        tap = await AmiTap.open()
        sent = await login(tap)
        await tap.wait_for("Event: FullyBooted")
        recorder.save(tap, "login", "Login after manager.conf granted read=...,call", sent, permissions=call_read)

        sent = await show_channels(tap)
        recorder.save(tap, "sync-idle", "CoreShowChannels with no call", sent, permissions=call_read)

        # inbound, answered, the agent (callee) hangs up
        agent.serve(answer_after=0.5, behaviour="answer")
        agent.drain_incoming()
        call = genesys_calls()
        answered = call.wait_answered(15)
        await wait_count(tap, ANSWERED)
        recorder.save(
            tap,
            "inbound-answered",
            f"Genesys ({GENESYS_CALLER}) calls DN {AGENT}; the agent answers after 0.5 s",
            [],
            permissions=call_read,
            sip={"genesys_invite": call.final_status, "answered": answered},
        )
        sent = await show_channels(tap)
        recorder.save(
            tap, "sync-inbound-call", "CoreShowChannels during the answered inbound call", sent, permissions=call_read
        )
        leg = agent.wait_incoming(5)
        bye = leg.bye()
        await wait_count(tap, {HANGUP: 2})
        recorder.save(
            tap,
            "inbound-hangup-by-agent",
            "The agent (the dialled side) hangs up the inbound call",
            [],
            permissions=call_read,
            sip={"agent_bye": bye, "genesys_saw_bye": call.wait_ended(5)},
        )

        # outbound, answered, Genesys (callee) hangs up
        genesys.serve(answer_after=0.5, behaviour="answer")
        genesys.drain_incoming()
        call = agent_calls()
        answered = call.wait_answered(15)
        await wait_count(tap, ANSWERED)
        recorder.save(
            tap,
            "outbound-answered",
            f"DN {AGENT} calls {NUMBER} (allow list) at Genesys, with digest auth; Genesys answers after 0.5 s",
            [],
            permissions=call_read,
            sip={"agent_invite": call.final_status, "answered": answered},
        )
        sent = await show_channels(tap)
        recorder.save(
            tap, "sync-outbound-call", "CoreShowChannels during the answered outbound call", sent, permissions=call_read
        )
        leg = genesys.wait_incoming(5)
        bye = leg.bye()
        await wait_count(tap, {HANGUP: 2})
        recorder.save(
            tap,
            "outbound-hangup-by-genesys",
            "Genesys (the dialled side) hangs up the outbound call",
            [],
            permissions=call_read,
            sip={"genesys_bye": bye, "agent_saw_bye": call.wait_ended(5)},
        )

        # both directions at once, each caller hangs up
        agent.drain_incoming()
        genesys.drain_incoming()
        inbound = genesys_calls()
        inbound_answered = inbound.wait_answered(15)
        outbound = agent_calls()
        outbound_answered = outbound.wait_answered(15)
        await wait_count(tap, {"DialStatus: ANSWER": 2, "Event: BridgeEnter": 4})
        recorder.save(
            tap,
            "two-calls-answered",
            f"An inbound and an outbound call of DN {AGENT} at the same time, both answered",
            [],
            permissions=call_read,
            sip={
                "genesys_invite": inbound.final_status,
                "inbound_answered": inbound_answered,
                "agent_invite": outbound.final_status,
                "outbound_answered": outbound_answered,
            },
        )
        sent = await show_channels(tap)
        recorder.save(tap, "sync-two-calls", "CoreShowChannels during both answered calls", sent, permissions=call_read)
        inbound_bye = inbound.bye()
        outbound_bye = outbound.bye()
        await wait_count(tap, {HANGUP: 4})
        recorder.save(
            tap,
            "two-calls-hangup-by-callers",
            "Genesys hangs up the inbound call, then the agent the outbound one (the callers hang up)",
            [],
            permissions=call_read,
            sip={"genesys_bye": inbound_bye, "agent_bye": outbound_bye},
        )

        # failures
        agent.serve(behaviour="busy")
        agent.drain_incoming()
        call = genesys_calls()
        final = call.wait_final(15)
        await wait_count(tap, {"DialStatus: BUSY": 1, HANGUP: 2})
        recorder.save(
            tap,
            "inbound-busy",
            f"Genesys calls DN {AGENT}; the agent answers 486 Busy Here",
            [],
            permissions=call_read,
            sip={"genesys_invite": final},
        )

        agent.serve(behaviour="ring")
        agent.drain_incoming()
        call = genesys_calls()
        await until(lambda: call.ringing_at is not None)
        await asyncio.sleep(1.0)
        final = call.cancel()
        await wait_count(tap, {"DialStatus: CANCEL": 1, HANGUP: 2})
        recorder.save(
            tap,
            "inbound-cancel",
            f"Genesys calls DN {AGENT}, the agent rings, Genesys CANCELs after 1 s of ringing",
            [],
            permissions=call_read,
            sip={"genesys_invite": final},
        )

        call = genesys_calls(OFFLINE_AGENT)
        final = call.wait_final(15)
        await wait_count(tap, {HANGUP: 1})
        recorder.save(
            tap,
            "inbound-agent-offline",
            f"Genesys calls DN {OFFLINE_AGENT}, which has no contact: Dial is skipped, Hangup(20)",
            [],
            permissions=call_read,
            sip={"genesys_invite": final},
        )

        call = agent_calls(REFUSED_NUMBER)
        final = call.wait_final(15)
        await wait_count(tap, {HANGUP: 1})
        recorder.save(
            tap,
            "outbound-rejected-number",
            f"DN {AGENT} calls {REFUSED_NUMBER}, outside the allow list: Dial is skipped, Hangup(21)",
            [],
            permissions=call_read,
            sip={"agent_invite": final},
        )

        genesys.serve(behaviour="busy")
        genesys.drain_incoming()
        call = agent_calls()
        final = call.wait_final(15)
        await wait_count(tap, {"DialStatus: BUSY": 1, HANGUP: 2})
        recorder.save(
            tap,
            "outbound-busy",
            f"DN {AGENT} calls {NUMBER}; Genesys answers 486 Busy Here",
            [],
            permissions=call_read,
            sip={"agent_invite": final},
        )
        tap.close()
        recorder.finish(version, {"role": role_read, "capture": call_read})
    finally:
        agent.close()
        genesys.close()
        (root / "farend.log").write_text(
            "\n".join(f"{who} {when:.3f} {direction} {line}" for who, fe in (("genesys", genesys), ("agent", agent))
                      for when, direction, line in fe.log),
            encoding="utf-8",
        )  # fmt: skip
        cli("core stop now")
        asterisk.wait(timeout=30)
    return 0


def _read_line(path: Path) -> str:
    match = re.search(r"^read=(.*)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FIXTURES / "calls")
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside is not None:
        return asyncio.run(inside_main(args.inside))
    return host_main(args.out, args.image, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
