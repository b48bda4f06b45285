#!/usr/bin/env python3
"""Container side of test_in_image.py's call test: the monitor, as the image runs it, following real calls.

Runs in a throwaway container of the gateway image (``--network none``) next to capture_ami.py,
capture_calls.py, tests/lab/farend.py and the monitor package under /capture, on the configs
capture_calls.py prepares (DN 1002 as a plain-RTP UA, the monitor's AMI user with ``read=...,call``).
Starts Asterisk, answers a call *before* the monitor starts (it must find it with CoreShowChannels),
then starts ``python3 -m registration_monitor``, ends that call, makes an outbound call and four
failed set-ups, and prints one JSON document with what the monitor served and logged. Stdlib only.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from capture_ami import DNS, GENESYS_ADDRESS, GENESYS_PORT, cli, start_asterisk
from capture_calls import AGENT, AGENT_ADDRESS, ASTERISK_SIP, NUMBER, OFFLINE_AGENT, REFUSED_NUMBER, register
from farend import FarEnd
from in_image import get, state
from polling import wait_for


def calls_in_progress(count: int) -> dict[str, Any] | None:
    document = state()
    if document.get("synced") and document.get("calls", {}).get("in_progress") == count:
        return document
    return None


def main() -> int:
    root = Path(__file__).resolve().parent
    asterisk = start_asterisk(root / "asterisk.log")
    genesys = FarEnd(bind=GENESYS_ADDRESS, sip_port=GENESYS_PORT, user="genesys")
    agent = FarEnd(bind=AGENT_ADDRESS, auth=(AGENT, DNS[AGENT]), user=AGENT)
    target = f"{ASTERISK_SIP[0]}:{ASTERISK_SIP[1]}"
    result: dict[str, Any] = {"register": register(AGENT, agent.contact)}
    out, err = (root / "monitor.stdout").open("wb"), (root / "monitor.stderr").open("wb")
    monitor: subprocess.Popen[bytes] | None = None
    try:
        agent.serve(answer_after=0.3, behaviour="answer")
        before = genesys.invite(f"sip:{AGENT}@{target}", from_user="5550100")
        result["answered_before_start"] = before.wait_answered(15)
        monitor = subprocess.Popen(
            ["python3", "-m", "registration_monitor", "--config", str(root / "monitor.json")],
            cwd=root,
            stdout=out,
            stderr=err,
        )
        result["state_resynced"] = wait_for("the call found by the first sync", lambda: calls_in_progress(1))
        result["bye_before"] = before.bye()
        result["state_ended"] = wait_for("the Hangup seen", lambda: calls_in_progress(0))

        genesys.serve(answer_after=0.3, behaviour="answer")
        outbound = agent.invite(f"sip:{NUMBER}@{target}", from_user=AGENT)
        result["outbound_answered"] = outbound.wait_answered(15)
        result["state_outbound"] = wait_for("the outbound call", lambda: calls_in_progress(1))
        result["metrics_during_call"] = get("/metrics")[1]
        result["bye_outbound"] = outbound.bye()
        wait_for("the outbound call ended", lambda: calls_in_progress(0))

        agent.serve(behaviour="busy")
        result["inbound_busy"] = genesys.invite(f"sip:{AGENT}@{target}", from_user="5550100").wait_final(15)
        agent.serve(behaviour="ring")
        ringing = genesys.invite(f"sip:{AGENT}@{target}", from_user="5550100")
        wait_for("ringing", lambda: ringing.ringing_at is not None, timeout=10)
        result["inbound_cancel"] = ringing.cancel()
        result["inbound_offline"] = genesys.invite(f"sip:{OFFLINE_AGENT}@{target}").wait_final(15)
        refused = agent.invite(f"sip:{REFUSED_NUMBER}@{target}", from_user=AGENT)
        result["outbound_refused"] = refused.wait_final(15)
        time.sleep(1.0)
        result["metrics_final"] = get("/metrics")[1]
        result["state_final"] = state()
    finally:
        if monitor is not None:
            monitor.terminate()
            result["monitor_exit"] = monitor.wait(timeout=15)
        out.close()
        err.close()
        agent.close()
        genesys.close()
        cli("core stop now")
        asterisk.wait(timeout=30)
    result["stdout"] = (root / "monitor.stdout").read_text()
    result["stderr"] = (root / "monitor.stderr").read_text()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
