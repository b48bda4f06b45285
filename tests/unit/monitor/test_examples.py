"""The shipped monitoring examples (examples/prometheus, examples/grafana) against the monitor.

promtool (Debian's prometheus package) checks the alert rules and runs their unit tests; every
metric the alerts and the dashboard use must be one the monitor exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from registration_monitor.http import build_registry
from registration_monitor.state import MonitorState

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "examples" / "prometheus"
DASHBOARD = ROOT / "examples" / "grafana" / "webrtc-genesys.json"
METRIC = re.compile(r"\bwebrtc_[a-z_]+\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("WEBRTC_REQUIRE_DAEMONS"):
            pytest.fail("promtool is missing (Debian package prometheus; scripts/bootstrap-host.sh installs it)")
        pytest.skip("promtool not installed")
    return found


def exported_names() -> set[str]:
    """Every family the monitor exports in either mode (counters with their _total suffix)."""
    names: set[str] = set()
    for mode in ("kamailio", "static"):
        text = generate_latest(build_registry(MonitorState(mode, ["1002"]))).decode()
        names |= set(re.findall(r"^# TYPE (\S+) (?:counter|gauge)", text, re.MULTILINE))
        names |= {f"{n}_total" for n in re.findall(r"^# TYPE (\S+) counter", text, re.MULTILINE)}
    return names


@pytest.mark.parametrize("args", [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]])
def test_promtool_accepts_the_alert_rules_and_their_tests_pass(args: list[str]) -> None:
    result = subprocess.run([promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_alerts_and_the_dashboard_use_is_exported() -> None:
    exported = exported_names()
    alerts = (PROMETHEUS / "alerts.yml").read_text()
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    expressions += [v["query"] for v in dashboard["templating"]["list"]]
    used = set(METRIC.findall(alerts)) | {m for e in expressions for m in METRIC.findall(e)}
    assert used, "no webrtc_* metric found: the pattern or the files changed"
    assert used <= exported, f"used but not exported by the monitor: {sorted(used - exported)}"


def test_the_alerts_cover_what_an_operator_pages_on() -> None:
    alerts = (PROMETHEUS / "alerts.yml").read_text()
    for expression in (
        "webrtc_directory_numbers_unbound_genesys > 0",
        'up{job="webrtc-registration-monitor"} == 0',
        "webrtc_monitor_ami_connected == 0",
        "webrtc_monitor_state_synced == 0",
        "rate(webrtc_forwarding_failures_total[5m]))",
    ):
        assert expression in alerts, expression


def test_the_dashboard_panels_have_unique_ids_and_a_datasource_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert all(p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dashboard["panels"])
