"""Benchmark 2: the WebSocket path with M concurrent JsSIP clients (one node process).

kamailio  wss through nginx -> Kamailio -> Asterisk (kamailio mode): time from launching the
          clients until all are registered (their 200 OK), and until all are bound at the
          stand-in (Kamailio's mirror; sampled every 100 ms).
direct    the baseline: the same clients straight to Asterisk's WebSocket (ws, port 8088) in
          static mode. In static mode Asterisk's own registrations bind the DNs at Genesys, so
          there is no "bound" time to wait for.
nginx     also measured: wss through nginx -> Asterisk (static mode), nginx's share.
The clients use action "register" (register, report, exit without un-REGISTER); the contacts
they leave at Asterisk are removed afterwards (SIPp, Contact: *). contacts_at_asterisk is read
after the clients exited: Asterisk drops a WebSocket client's contact when its connection
closes (static mode), while a contact relayed by Kamailio (UDP, Path) stays.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

from lab import GATEWAY, WSS_URL, client_command, client_env, forwarded_bound, genesys_bindings, restart_standin

from bench.common import (
    ASTERISK_WS_PORT,
    BenchError,
    Config,
    Lab,
    asterisk_contacts,
    bench_users,
    log,
    median,
    ratio,
)
from bench.sipp import clear_contacts

DIRECT_URL = f"ws://{GATEWAY}:{ASTERISK_WS_PORT}/ws"


def one_round(users: dict[str, str], url: str, wait_bound: bool, timeout: float = 90) -> dict[str, Any]:
    """Launch the clients, wait until all registered (and bound, if asked); return the times."""
    dns = sorted(users)
    bound_at: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                if len(forwarded_bound(dns, genesys_bindings())) == len(dns):
                    bound_at.append(time.time())
                    return
            except OSError:
                pass
            stop.wait(0.1)

    started = time.time()
    proc = subprocess.Popen(
        client_command(users, "register", "--timeout", str(int(timeout - 10)), url=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(),
    )
    sampler = threading.Thread(target=sample, daemon=True)
    if wait_bound:
        sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    if wait_bound:
        sampler.join(timeout=20)
    stop.set()
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    registered = {e["dn"]: e["t"] / 1000 for e in events if e["event"] == "registered"}
    connected = [e["t"] / 1000 for e in events if e["event"] == "connected"]
    failed = [e for e in events if e["event"] in ("registrationFailed", "timeout")]
    if not registered:
        raise BenchError(f"no client registered at {url}: {events[-5:]} {stderr[-500:]}")
    at_asterisk = set(asterisk_contacts()) & set(dns)
    result: dict[str, Any] = {
        "url": url,
        "clients": len(dns),
        "registered": len(registered),
        "failed": len(failed),
        "failure_sample": failed[:5],
        "contacts_at_asterisk": len(at_asterisk),
        "all_registered_s": round(max(registered.values()) - started, 3) if len(registered) == len(dns) else None,
        "first_connected_s": round(min(connected) - started, 3) if connected else None,
        "median_registered_s": round(float(median([t - started for t in registered.values()]) or 0), 3),
    }
    if wait_bound:
        result["all_bound_s"] = round(bound_at[0] - started, 3) if bound_at else None
        result["bound_at_standin"] = len(forwarded_bound(dns))
    log(
        f"websocket {url}: {len(registered)}/{len(dns)} registered in {result['all_registered_s']} s"
        + (f", bound in {result.get('all_bound_s')} s" if wait_bound else "")
    )
    return result


def run(cfg: Config, lab: Lab) -> dict[str, Any]:
    everyone = bench_users(cfg.n_dns)
    users = bench_users(cfg.m_clients)
    provision: list[dict[str, Any]] = []
    rounds: dict[str, list[dict[str, Any]]] = {"kamailio": [], "direct": [], "nginx": []}

    step = lab.ensure("kamailio", everyone)
    if step:
        provision.append(step.as_dict())
    for _ in range(cfg.ws_reps):
        restart_standin()  # every round starts with no forwarded binding
        rounds["kamailio"].append(one_round(users, WSS_URL, wait_bound=True))
    cleanup = [clear_contacts(cfg, users)]

    step = lab.ensure("static", everyone)
    if step:
        provision.append(step.as_dict())
    for _ in range(cfg.ws_reps):
        rounds["direct"].append(one_round(users, DIRECT_URL, wait_bound=False))
        rounds["nginx"].append(one_round(users, WSS_URL, wait_bound=False))
    cleanup.append(clear_contacts(cfg, users))

    def med(path: str, key: str) -> float | None:
        values = [r[key] for r in rounds[path] if r.get(key) is not None]
        return median(values)

    k_registered = med("kamailio", "all_registered_s")
    k_bound = med("kamailio", "all_bound_s")
    d_registered = med("direct", "all_registered_s")
    n_registered = med("nginx", "all_registered_s")
    return {
        "benchmark": "websocket",
        "m_clients": cfg.m_clients,
        "n_dns_provisioned": cfg.n_dns,
        "reps": cfg.ws_reps,
        "kamailio_vars": cfg.kamailio_vars,
        "provision": provision,
        "median": {
            "kamailio_all_registered_s": k_registered,
            "kamailio_all_bound_s": k_bound,
            "direct_all_registered_s": d_registered,
            "static_nginx_all_registered_s": n_registered,
        },
        "all_registered_everywhere": all(r["registered"] == r["clients"] for path in rounds.values() for r in path),
        "all_bound_kamailio": all(r.get("bound_at_standin") == r["clients"] for r in rounds["kamailio"]),
        # Asterisk's HTTP server takes at most `sessionlimit` (default 100) WebSocket sessions.
        "static_registered_max": max((r["registered"] for p in ("direct", "nginx") for r in rounds[p]), default=0),
        "ws_time_ratio_kamailio_vs_direct": ratio(k_bound, d_registered),
        "ws_registered_ratio_kamailio_vs_direct": ratio(k_registered, d_registered),
        "ws_time_ratio_kamailio_vs_static_nginx": ratio(k_bound, n_registered),
        "rounds": rounds,
        "cleanup": cleanup,
    }
