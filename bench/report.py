"""summary.json, summary.md and the plots, from the benchmarks' result files in a directory.

.venv/bin/python -m bench.report bench/results     # rebuild from existing results
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

from bench.common import log, machine, median, write_json

# What a run records about itself (kept when the summary is rebuilt from the result files).
RUN_INFO_KEYS = (
    "date",
    "mode",
    "config",
    "invocations",
    "benchmarks_run",
    "errors",
    "deviations",
    "run_seconds",
    "lab_minutes_total",
    "playbook_runs",
)
TARGETS = {
    "throughput": "Kamailio >= 0.9x Asterisk alone, 0 DNs lost",
    "gap": "gap 0 ms with our playbooks",
    "revert": "revert.yml <= 1.5x the seed's procedure",
    "idempotent": "an idempotent revert.yml in <= 10 s, changed=0",
    "calls": "call set-up p95, kamailio mode <= 1.1x static mode",
    "switch_calls": "no call dropped by a switch",
    "genesys_outage": "Genesys back (or failed over): every DN bound again within 10 s + N/200 s, both modes",
}


def load(out: Path, name: str) -> dict[str, Any]:
    path = out / f"{name}.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def build_summary(out: Path, run_info: dict[str, Any]) -> dict[str, Any]:
    tp = load(out, "throughput")
    ws = load(out, "websocket")
    gap = load(out, "switch_gap")
    cost = load(out, "switch_cost")
    scale = load(out, "static_scale")
    calls = load(out, "calls")
    outage = load(out, "genesys_outage")
    setup = calls.get("setup") or {}
    common = tp.get("at_highest_common_rate") or {}
    summary: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **machine(),
        **run_info,
        # 1. throughput
        "throughput_ratio_kamailio_vs_direct": tp.get("throughput_ratio_kamailio_vs_direct"),
        "max_sustained_rate_kamailio": (tp.get("max_sustained_rate") or {}).get("kamailio"),
        "max_sustained_rate_direct": (tp.get("max_sustained_rate") or {}).get("direct"),
        "throughput_capped_by_ladder": tp.get("capped_by_ladder"),
        "achieved_ratio_at_max": tp.get("achieved_ratio_at_max"),
        "delay_rate": common.get("offered_rate"),
        "delay_p50_ms_kamailio": (common.get("kamailio") or {}).get("p50_ms"),
        "delay_p95_ms_kamailio": (common.get("kamailio") or {}).get("p95_ms"),
        "delay_p99_ms_kamailio": (common.get("kamailio") or {}).get("p99_ms"),
        "delay_p50_ms_direct": (common.get("direct") or {}).get("p50_ms"),
        "delay_p95_ms_direct": (common.get("direct") or {}).get("p95_ms"),
        "delay_p99_ms_direct": (common.get("direct") or {}).get("p99_ms"),
        # where the time goes (bench/cpu.py): CPU ms per registration by part, at delay_rate
        "cpu_ms_per_registration_kamailio": (common.get("kamailio") or {}).get("cpu_ms_per_registration"),
        "cpu_ms_per_registration_direct": (common.get("direct") or {}).get("cpu_ms_per_registration"),
        # where the time goes (bench/kamstats.py), at delay_rate: drops at each socket, and
        # Kamailio's transactions, drops and memory in the last repetition through it
        "udp_drops_kamailio": (common.get("kamailio") or {}).get("udp_drops"),
        "udp_drops_direct": (common.get("direct") or {}).get("udp_drops"),
        "kamailio_stats": (common.get("kamailio") or {}).get("kamailio"),
        # every rate of the ladder, both paths (medians over the repetitions)
        "throughput_per_rate": [
            {
                "path": target,
                **{k: r.get(k) for k in ("offered_rate", "success_ratio", "achieved_rate", "retransmissions")},
                **{k: r.get(k) for k in ("p50_ms", "p95_ms", "p99_ms", "sustained")},
                "udp_drops": {k: v for k, v in (r.get("udp_drops") or {}).items() if v} or None,
                "cpu_ms": round(sum((r.get("cpu_ms_per_registration") or {}).values()), 2) or None,
            }
            for target, rows in (tp.get("per_rate") or {}).items()
            for r in rows
        ],
        "lost_dns": tp.get("lost_dns"),
        "bound_at_standin": (tp.get("verification") or {}).get("bound_at_standin"),
        "n_dns": tp.get("n_dns"),
        # 2. websocket
        "ws_clients": ws.get("m_clients"),
        "ws_all_registered_s_kamailio": (ws.get("median") or {}).get("kamailio_all_registered_s"),
        "ws_all_bound_s_kamailio": (ws.get("median") or {}).get("kamailio_all_bound_s"),
        "ws_all_registered_s_direct": (ws.get("median") or {}).get("direct_all_registered_s"),
        "ws_all_registered_s_static_nginx": (ws.get("median") or {}).get("static_nginx_all_registered_s"),
        "ws_time_ratio_kamailio_vs_direct": ws.get("ws_time_ratio_kamailio_vs_direct"),
        "ws_static_registered_max": ws.get("static_registered_max"),
        # 3. switch cost
        "revert_s_ours": (cost.get("median") or {}).get("ours_revert_s"),
        "revert_s_seed": (cost.get("median") or {}).get("seed_revert_s"),
        "rollback_s_ours": (cost.get("median") or {}).get("ours_rollback_s"),
        "rollback_s_seed": (cost.get("median") or {}).get("seed_rollback_s"),
        "revert_time_ratio_vs_seed": cost.get("revert_time_ratio_vs_seed"),
        "rollback_time_ratio_vs_seed": cost.get("rollback_time_ratio_vs_seed"),
        "switch_reps": cost.get("reps"),
        "idempotent_changed_revert": ((cost.get("idempotent") or {}).get("revert") or {}).get("changed"),
        "idempotent_changed_rollback": ((cost.get("idempotent") or {}).get("rollback") or {}).get("changed"),
        "idempotent_revert_s": ((cost.get("idempotent") or {}).get("revert") or {}).get("seconds"),
        "idempotent_rollback_s": ((cost.get("idempotent") or {}).get("rollback") or {}).get("seconds"),
        # 4. switch gap
        "switch_gap_ms_ours": gap.get("switch_gap_ms_ours"),
        "switch_gap_ms_seed": gap.get("switch_gap_ms_seed"),
        "switch_dns_unbound_ours": gap.get("dns_unbound_ours"),
        "switch_dns_unbound_seed": gap.get("dns_unbound_seed"),
        "switch_leftovers_ours": gap.get("leftovers_ours"),
        "switch_leftovers_seed": gap.get("leftovers_seed"),
        "switch_outage_ms_max_ours": max(
            (s["outage_ms"]["max"] or 0 for k, s in (gap.get("switches") or {}).items() if k.startswith("ours")),
            default=None,
        ),
        "switch_outage_ms_max_seed": max(
            (s["outage_ms"]["max"] or 0 for k, s in (gap.get("switches") or {}).items() if k.startswith("seed")),
            default=None,
        ),
        # 6. calls
        "call_setup_p50_ms_kamailio": (setup.get("kamailio") or {}).get("p50_ms"),
        "call_setup_p95_ms_kamailio": (setup.get("kamailio") or {}).get("p95_ms"),
        "call_setup_p50_ms_static": (setup.get("static") or {}).get("p50_ms"),
        "call_setup_p95_ms_static": (setup.get("static") or {}).get("p95_ms"),
        "call_setups": (setup.get("kamailio") or {}).get("calls"),
        "call_setup_p95_ratio_kamailio_vs_static": calls.get("setup_p95_ratio_kamailio_vs_static"),
        "max_concurrent_calls_with_audio": calls.get("max_concurrent_calls_with_audio"),
        "concurrent_calls_capped_by_ladder": (calls.get("capacity") or {}).get("capped_by_ladder"),
        "switch_calls_up": ((calls.get("switch") or {}).get("ours") or {}).get("calls"),
        "switch_with_calls_playbook": ((calls.get("switch") or {}).get("ours") or {}).get("playbook"),
        "calls_dropped_by_switch": calls.get("calls_dropped_by_switch"),
        "calls_dropped_by_seed_switch": calls.get("calls_dropped_by_seed_switch"),
        "switch_with_calls_s": calls.get("switch_with_calls_s"),
        # 7. Genesys outages: seconds to all bound again, each repetition, per mode and scenario
        "outage_dns": outage.get("dns"),
        "outage_limit_s": outage.get("limit_s"),
        "outage_baseline_first_bound_s": outage.get("baseline_first_bound_s"),
        "outage_all_within_limit": outage.get("all_within_limit"),
        "outage_slowest_ratio_vs_baseline": outage.get("slowest_ratio_vs_baseline"),
        "outage": {
            f"{mode} {scenario}": figures["seconds"]
            for mode in ("kamailio", "static")
            for scenario, figures in (outage.get(mode) or {}).items()
        },
        "outage_down_s": {"silent": outage.get("silent_s"), "unavailable": outage.get("unavailable_s")},
        # 5. static scale
        "static_scale": {
            str(s["bench_dns"]): {
                "registrations": s.get("registrations"),
                "booted_s": s.get("median_booted_s"),
                "all_registered_s": s.get("median_all_registered_s"),
                "skipped": s.get("skipped"),
                "error": (s.get("error") or "")[:200] or None,
            }
            for s in scale.get("sizes", [])
        },
    }
    tp_ratio, lost = summary["throughput_ratio_kamailio_vs_direct"], summary["lost_dns"]
    met: dict[str, bool | None] = {
        TARGETS["throughput"]: None if tp_ratio is None or lost is None else (tp_ratio >= 0.9 and lost == 0),
        TARGETS["gap"]: None if summary["switch_gap_ms_ours"] is None else summary["switch_gap_ms_ours"] == 0,
        TARGETS["revert"]: None
        if summary["revert_time_ratio_vs_seed"] is None
        else summary["revert_time_ratio_vs_seed"] <= 1.5,
        TARGETS["idempotent"]: None
        if summary["idempotent_revert_s"] is None or summary["idempotent_changed_revert"] is None
        else summary["idempotent_revert_s"] <= 10 and summary["idempotent_changed_revert"] == 0,
        TARGETS["calls"]: None
        if summary["call_setup_p95_ratio_kamailio_vs_static"] is None
        else summary["call_setup_p95_ratio_kamailio_vs_static"] <= 1.1,
        TARGETS["switch_calls"]: None
        if summary["calls_dropped_by_switch"] is None
        else summary["calls_dropped_by_switch"] == 0,
        TARGETS["genesys_outage"]: summary["outage_all_within_limit"],
    }
    # A target is judged only on a measure this run took; the others are named, not guessed.
    summary["targets"] = {name: ok for name, ok in met.items() if ok is not None}
    summary["targets_not_measured"] = [name for name, ok in met.items() if ok is None]
    return summary


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value}{unit}"


def delays(summary: dict[str, Any], path: str) -> str:
    return " / ".join(fmt(summary[f"delay_{p}_ms_{path}"]) for p in ("p50", "p95", "p99")) + " ms"


def cpu_parts(parts: dict[str, float] | None) -> str:
    """ "1.19 (asterisk 0.38, container runtime 0.31, ...)": total first, largest part first."""
    if not parts:
        return "n/a"
    ranked = sorted(parts.items(), key=lambda item: -item[1])
    return f"{sum(parts.values()):.2f} (" + ", ".join(f"{part} {ms:.2f}" for part, ms in ranked) + ")"


def markdown(summary: dict[str, Any]) -> str:
    s = summary
    rows = [
        (
            "Highest rate sustained (>= 99.9 % success, >= 95 % achieved), via Kamailio",
            fmt(s["max_sustained_rate_kamailio"], "/s"),
        ),
        (
            "Highest rate sustained (>= 99.9 % success, >= 95 % achieved), Asterisk alone",
            fmt(s["max_sustained_rate_direct"], "/s"),
        ),
        ("Throughput ratio Kamailio / Asterisk alone", fmt(s["throughput_ratio_kamailio_vs_direct"])),
        (f"Registration delay p50/p95/p99 at {fmt(s['delay_rate'], '/s')}, via Kamailio", delays(s, "kamailio")),
        (f"Registration delay p50/p95/p99 at {fmt(s['delay_rate'], '/s')}, Asterisk alone", delays(s, "direct")),
        (
            f"CPU ms per registration at {fmt(s['delay_rate'], '/s')}, via Kamailio (by part)",
            cpu_parts(s.get("cpu_ms_per_registration_kamailio")),
        ),
        (
            f"CPU ms per registration at {fmt(s['delay_rate'], '/s')}, Asterisk alone (by part)",
            cpu_parts(s.get("cpu_ms_per_registration_direct")),
        ),
        (
            f"DNs bound at the stand-in after {fmt(s['n_dns'])} via Kamailio (lost)",
            f"{fmt(s['bound_at_standin'])} ({fmt(s['lost_dns'])} lost)",
        ),
        (
            f"{fmt(s['ws_clients'])} wss clients: all registered, via Kamailio",
            fmt(s["ws_all_registered_s_kamailio"], " s"),
        ),
        (
            f"{fmt(s['ws_clients'])} wss clients: all bound at the stand-in, via Kamailio",
            fmt(s["ws_all_bound_s_kamailio"], " s"),
        ),
        (
            f"{fmt(s['ws_clients'])} ws clients: all registered, straight to Asterisk (static)",
            fmt(s["ws_all_registered_s_direct"], " s"),
        ),
        (
            f"{fmt(s['ws_clients'])} wss clients: all registered, nginx -> Asterisk (static)",
            fmt(s["ws_all_registered_s_static_nginx"], " s"),
        ),
        ("WebSocket ratio (Kamailio bound / Asterisk direct registered)", fmt(s["ws_time_ratio_kamailio_vs_direct"])),
        ("Most wss/ws clients registered at once in static mode", fmt(s["ws_static_registered_max"])),
        (
            f"revert.yml, median of {fmt(s['switch_reps'])} (seed)",
            f"{fmt(s['revert_s_ours'], ' s')} ({fmt(s['revert_s_seed'], ' s')})",
        ),
        (
            f"rollback.yml, median of {fmt(s['switch_reps'])} (seed)",
            f"{fmt(s['rollback_s_ours'], ' s')} ({fmt(s['rollback_s_seed'], ' s')})",
        ),
        ("revert time ratio ours / seed", fmt(s["revert_time_ratio_vs_seed"])),
        ("rollback time ratio ours / seed", fmt(s["rollback_time_ratio_vs_seed"])),
        (
            "Idempotent re-run: changed (revert / rollback)",
            f"{fmt(s['idempotent_changed_revert'])} / {fmt(s['idempotent_changed_rollback'])}",
        ),
        (
            "Idempotent re-run: time (revert / rollback)",
            f"{fmt(s['idempotent_revert_s'], ' s')} / {fmt(s['idempotent_rollback_s'], ' s')}",
        ),
        ("Switch gap, ours (seed)", f"{fmt(s['switch_gap_ms_ours'], ' ms')} ({fmt(s['switch_gap_ms_seed'], ' ms')})"),
        (
            "Client DNs ever unbound, ours (seed)",
            f"{fmt(s['switch_dns_unbound_ours'])} ({fmt(s['switch_dns_unbound_seed'])})",
        ),
        (
            "Old-mode leftovers after both switches, ours (seed)",
            f"{fmt(s['switch_leftovers_ours'])} ({fmt(s['switch_leftovers_seed'])})",
        ),
        (
            "Longest client outage, ours (seed)",
            f"{fmt(s['switch_outage_ms_max_ours'], ' ms')} ({fmt(s['switch_outage_ms_max_seed'], ' ms')})",
        ),
        (
            f"Call set-up p50 / p95 over {fmt(s['call_setups'])} calls, kamailio mode",
            f"{fmt(s['call_setup_p50_ms_kamailio'], ' ms')} / {fmt(s['call_setup_p95_ms_kamailio'], ' ms')}",
        ),
        (
            f"Call set-up p50 / p95 over {fmt(s['call_setups'])} calls, static mode",
            f"{fmt(s['call_setup_p50_ms_static'], ' ms')} / {fmt(s['call_setup_p95_ms_static'], ' ms')}",
        ),
        ("Call set-up p95 ratio kamailio / static", fmt(s["call_setup_p95_ratio_kamailio_vs_static"])),
        (
            "Most concurrent calls with two-way audio (ladder capped it)",
            f"{fmt(s['max_concurrent_calls_with_audio'])} ({fmt(s['concurrent_calls_capped_by_ladder'])})",
        ),
        (
            f"Calls dropped by {fmt(s['switch_with_calls_playbook'])} with {fmt(s['switch_calls_up'])} calls up, "
            "ours (seed)",
            f"{fmt(s['calls_dropped_by_switch'])} ({fmt(s['calls_dropped_by_seed_switch'])})",
        ),
        ("That switch with those calls up (it waits for the last to end)", fmt(s["switch_with_calls_s"], " s")),
    ]
    scenarios = {
        "failover": "the preferred Genesys address silent: all bound at the other",
        "failback": "the preferred address back (bindings forgotten): all bound there again",
        "silent": f"Genesys silent {fmt((s.get('outage_down_s') or {}).get('silent'), ' s')}, bindings forgotten",
        "unavailable": f"Genesys answering 503 {fmt((s.get('outage_down_s') or {}).get('unavailable'), ' s')}, "
        "bindings forgotten",
    }
    for name, values in (s.get("outage") or {}).items():
        mode, scenario = name.split(" ", 1)
        each = ", ".join(fmt(v) for v in values)
        rows.append(
            (
                f"{mode} mode, {fmt(s['outage_dns'])} DNs, {scenarios.get(scenario, scenario)}: s to all bound "
                f"(each run; limit {fmt(s['outage_limit_s'], ' s')})",
                f"{each} (median {fmt(median(values))})",
            )
        )
    if s.get("outage"):
        rows.append(
            (
                "Slowest return / the agents' own first binding (baseline, same run)",
                f"{fmt(s['outage_slowest_ratio_vs_baseline'])} "
                f"(baseline {fmt(s['outage_baseline_first_bound_s'], ' s')})",
            )
        )
    for size, figures in s["static_scale"].items():
        if figures.get("skipped"):
            rows.append((f"Static mode, {size} bench DNs", f"skipped ({figures['skipped']})"))
        elif figures.get("error"):
            rows.append((f"Static mode, {size} bench DNs", "failed (see static_scale.json)"))
        else:
            rows.append(
                (
                    f"Static mode, {figures['registrations']} DNs: Asterisk booted / all Registered",
                    f"{fmt(figures['booted_s'], ' s')} / {fmt(figures['all_registered_s'], ' s')}",
                )
            )
    daemons = s.get("daemons") or {}
    machine_line = (
        f"Machine: {s.get('cpu')}, {s.get('cpus')} CPUs, {s.get('memory_mb')} MB, kernel {s.get('kernel')}, "
        f"Debian {s.get('debian')}, Docker {s.get('docker')}; "
        + "; ".join(f"{name}: {version}" for name, version in daemons.items())
    )
    lines = ["| measure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {name} | {fmt(met)} |" for name, met in s["targets"].items()]
    lines += [f"| {name} | not measured in this run |" for name in s.get("targets_not_measured", [])]
    if s.get("throughput_per_rate"):
        lines += [
            "",
            "| offered/s | path | success | achieved/s | retransmissions | p50 / p95 / p99 (ms) "
            "| CPU ms / registration |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in s["throughput_per_rate"]:
            path = "Kamailio" if r["path"] == "kamailio" else "Asterisk alone"
            success = f"{100 * r['success_ratio']:.2f} %" if r["success_ratio"] is not None else "n/a"
            percentiles = " / ".join(fmt(r[f"{p}_ms"]) for p in ("p50", "p95", "p99"))
            lines.append(
                f"| {r['offered_rate']} | {path} | {success} | {fmt(r['achieved_rate'])} | {fmt(r['retransmissions'])} "
                f"| {percentiles} | {fmt(r['cpu_ms'])} |"
            )
    lines += ["", machine_line]
    for run in s.get("invocations") or []:
        commit = run.get("commit") or "not recorded"
        tree = "" if run.get("commit") is None else (", clean tree" if run.get("tree_clean") else ", tree with changes")
        results = ", ".join(run.get("results") or []) or "nothing"
        lines.append(f"Run {run.get('started')}: commit {commit}{tree}; measured {results}")
    return "\n".join(lines) + "\n"


def plots(out: Path) -> list[str]:
    """registration_delay.png and switch_bindings.png; [] without matplotlib."""
    try:
        import matplotlib  # noqa: PLC0415 - optional (bench/requirements.txt)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        log("matplotlib missing (pip install -r bench/requirements.txt): no plots")
        return []
    made: list[str] = []
    if delay_plot(plt, out):
        made.append("registration_delay.png")
    if gap_plot(plt, out):
        made.append("switch_bindings.png")
    return made


def delay_plot(plt: Any, out: Path) -> bool:
    """Delay percentiles and achieved throughput per offered rate, both paths."""
    tp = load(out, "throughput")
    if tp.get("per_rate"):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        styles = {"kamailio": "tab:red", "direct": "tab:blue"}
        names = {"kamailio": "via Kamailio", "direct": "Asterisk alone"}
        for target, rows in tp["per_rate"].items():
            rates = [r["offered_rate"] for r in rows]
            for key, dash in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
                ax1.plot(
                    rates,
                    [r[key] for r in rows],
                    dash,
                    marker="o",
                    color=styles[target],
                    label=f"{names[target]} {key[:3]}",
                )
            ax2.plot(rates, [r["achieved_rate"] for r in rows], marker="o", color=styles[target], label=names[target])
            failed = [r for r in rows if not r["sustained"]]
            ax2.scatter(
                [r["offered_rate"] for r in failed],
                [r["achieved_rate"] for r in failed],
                s=120,
                facecolors="none",
                edgecolors=styles[target],
            )
        for ax in (ax1, ax2):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("offered registrations/s (SIPp, digest auth)")
            ax.grid(True, alpha=0.3)
        highest = max((r["p99_ms"] or 0) for rows in tp["per_rate"].values() for r in rows)
        if highest > 50:  # a long tail: compress it, keep 0 ms plottable
            ax1.set_yscale("symlog", linthresh=10)
        ax1.set_ylim(bottom=0)
        ax1.set_ylabel("registration delay, ms (REGISTER to 200 OK, both transactions)")
        ax1.set_title(f"Registration delay, median of {tp.get('reps')} runs")
        ax1.legend(fontsize=7)
        top = max(tp.get("rates") or [1])
        ax2.plot([min(tp["rates"]), top], [min(tp["rates"]), top], color="grey", lw=0.8, label="offered")
        ax2.set_yscale("log", base=2)
        ax2.set_ylabel("achieved registrations/s (circled: < 99.9 % success)")
        ax2.set_title("Throughput")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "registration_delay.png", dpi=110)
        plt.close(fig)
        return True
    return False


def gap_plot(plt: Any, out: Path) -> bool:
    """Client DNs bound and their contacts at the stand-in over time, ours vs the seed's."""
    gap = load(out, "switch_gap")
    if gap.get("switches"):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
        clients = gap.get("m_clients") or 0
        for ax, direction in zip(axes, ("revert", "rollback"), strict=True):
            for who, color in (("ours", "tab:green"), ("seed", "tab:orange")):
                sw = gap["switches"].get(f"{who}_{direction}")
                if not sw:
                    continue
                t = [p[0] for p in sw["timeline"]]
                ax.plot(
                    t,
                    [p[1] for p in sw["timeline"]],
                    color=color,
                    label=f"{who}: client DNs bound (gap {sw['gap_ms']} ms)",
                )
                ax.plot(
                    t,
                    [p[2] for p in sw["timeline"]],
                    "--",
                    color=color,
                    alpha=0.7,
                    label=f"{who}: their contacts at the stand-in",
                )
            ax.axhline(clients, color="grey", lw=0.6)
            ax.axvline(0.5, color="grey", lw=0.6, ls=":")
            ax.set_title(f"{direction} with {clients} live wss clients (switch starts at 0.5 s)")
            ax.set_xlabel("seconds since sampling started")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
        axes[0].set_ylabel("count at the Genesys stand-in")
        fig.tight_layout()
        fig.savefig(out / "switch_bindings.png", dpi=110)
        plt.close(fig)
        return True
    return False


def write(out: Path, run_info: dict[str, Any]) -> dict[str, Any]:
    summary = build_summary(out, run_info)
    summary["plots"] = plots(out)
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(markdown(summary))
    log(f"summary: {out / 'summary.json'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("bench/results"))
    args = parser.parse_args(argv)
    previous = load(args.out, "summary")
    info: dict[str, Any] = {k: previous[k] for k in RUN_INFO_KEYS if k in previous}
    write(args.out, info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
