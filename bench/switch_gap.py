"""Benchmark 4: the registration gap during a switch, with live clients (gap_clients).

JsSIP clients over wss (200 by default; they start in static mode, which asterisk_http_session_limit
lets Asterisk carry), set to reconnect like the Electron app, stay up through four
switches while tests/lab/gap.py samples the stand-in's bindings every 100 ms:
  ours_revert    revert.yml    (static -> kamailio)
  ours_rollback  rollback.yml  (kamailio -> static)
  seed_revert    the seed's manual procedure (tests/lab/seed.py), same files, same lab
  seed_rollback  its mirror image
Figures per switch: the longest time any client DN had no binding at all (gap_ms), how many
client DNs were ever seen unbound, leftovers of the old mode's contacts once settled, and
the clients' outage (socket closed to registered again). The stand-in is restarted before
the seed's runs (it keeps stale contacts, which would hide a gap); before the seed's rollback
Kamailio re-asserts the forwarded registrations on the fresh stand-in.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import restart_standin
from lab.gap import measure, running_clients
from lab.seed import capture, seed_revert, seed_rollback

from bench.common import LAB_USERS, Config, Lab, bench_users, log, median, percentile
from bench.sipp import clear_contacts


def is_static_contact(contact: str) -> bool:
    return ";line=" in contact


def is_forwarded_contact(contact: str) -> bool:
    return ";line=" not in contact


def timed(procedure: Callable[[Path], None], files: Path) -> dict[str, Any]:
    started = time.monotonic()
    procedure(files)
    return {"seconds": round(time.monotonic() - started, 2)}


def condense(figures: dict[str, Any]) -> dict[str, Any]:
    """measure()'s figures without the per-DN detail; the timeline as (t, DNs bound, contacts)."""
    outages = figures["outage_ms"]
    finite = [float(v) for v in outages.values() if v != math.inf]
    return {
        "gap_ms": figures["gap_ms"],
        "dns_unbound": figures["dns_unbound"],
        "leftovers": figures["leftovers"],
        "outage_ms": {
            "clients_with_outage": len(outages),
            "never_back": sum(1 for v in outages.values() if v == math.inf),
            "median": median(finite),
            "p95": percentile(finite, 95),
            "max": max(finite) if finite else None,
        },
        "samples": figures["samples"],
        "seconds": figures["seconds"],
        "switch": figures["result"],
        "timeline": [
            [t, sum(1 for c in counts.values() if c > 0), sum(counts.values())] for t, counts in figures["timeline"]
        ],
    }


def run(cfg: Config, lab: Lab) -> dict[str, Any]:
    provisioned = bench_users(cfg.switch_dns)
    clients = bench_users(cfg.gap_clients)
    dns = sorted(clients)
    provision = lab.ensure("static", provisioned)
    restart_standin()
    files = cfg.raw / "seed-files-gap"
    figures: dict[str, dict[str, Any]] = {}
    with running_clients(clients) as running:
        log(f"switch gap: {len(clients)} clients registered, ours_revert")
        figures["ours_revert"] = measure(
            dns, running, lambda: lab.playbook("revert.yml", provisioned).as_dict(), is_static_contact
        )
        capture(files / "kamailio")
        log("switch gap: ours_rollback")
        figures["ours_rollback"] = measure(
            dns, running, lambda: lab.playbook("rollback.yml", provisioned).as_dict(), is_forwarded_contact
        )
        capture(files / "static")
        restart_standin()
        log("switch gap: seed_revert")
        figures["seed_revert"] = measure(
            dns, running, lambda: timed(seed_revert, files / "kamailio"), is_static_contact, settle=8
        )
        restart_standin(reassert=True)
        log("switch gap: seed_rollback")
        figures["seed_rollback"] = measure(
            dns, running, lambda: timed(seed_rollback, files / "static"), is_forwarded_contact, settle=8
        )
    # The seed installed the very files our rollback rendered: the same static state.
    lab.state = ("static", frozenset({**LAB_USERS, **provisioned}))
    (cfg.raw / "switch_gap_full.json").write_text(json.dumps(figures, default=str))
    cleanup = clear_contacts(cfg, clients)
    condensed = {name: condense(f) for name, f in figures.items()}
    ours = [condensed["ours_revert"], condensed["ours_rollback"]]
    seed = [condensed["seed_revert"], condensed["seed_rollback"]]
    return {
        "benchmark": "switch_gap",
        "m_clients": cfg.gap_clients,
        "dns_provisioned": len({**LAB_USERS, **provisioned}),
        "registrar": "multiple",
        "provision": provision.as_dict() if provision else None,
        "switch_gap_ms_ours": max(f["gap_ms"] for f in ours),
        "switch_gap_ms_seed": max(f["gap_ms"] for f in seed),
        "dns_unbound_ours": max(f["dns_unbound"] for f in ours),
        "dns_unbound_seed": max(f["dns_unbound"] for f in seed),
        "leftovers_ours": sum(f["leftovers"] for f in ours),
        "leftovers_seed": sum(f["leftovers"] for f in seed),
        "switches": condensed,
        "cleanup": cleanup,
    }
