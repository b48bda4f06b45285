"""`playbooks/status.yml` (`make status` on the lab), read-only, as an operator runs it: it reports what the
gateway state says, names a registered client's DN as bound, and changes nothing."""

from __future__ import annotations

import json
import re

import pytest
from lab import DN_PASSWORDS, gateway_state, held_clients, run_playbook

DN = "1002"


def test_status_reports_the_mode_the_bound_client_and_changes_nothing() -> None:
    with held_clients({DN: DN_PASSWORDS[DN]}):
        state = gateway_state()
        result = run_playbook("status.yml", None, "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "changed=0" in result.stdout, result.stdout[-1500:]
    shown = re.search(r"TASK \[Show the status\].*?=> (\{.*?\n\})", result.stdout, re.DOTALL)
    assert shown, result.stdout[-3000:]
    status = json.loads(shown.group(1))["msg"]
    assert status["mode"] == state["mode"]
    assert DN in status["clients_at_asterisk"]
    assert DN in status["bound_static"] + status["bound_forwarded"]
    assert status["unbound_with_client"] == []
    assert sorted(status["services_up"]) == sorted(name for name, up in state["services"].items() if up)
    assert '"webrtc_unbound_dns"' in result.stdout  # the fleet roll-up (show_custom_stats)
    fleet = re.search(
        r"TASK \[Show the DNs that cannot take calls, every gateway of the run\].*?=> (\{.*?\n\})",
        result.stdout,
        re.DOTALL,
    )
    assert fleet, result.stdout[-3000:]
    assert json.loads(fleet.group(1))["msg"] == {"lab-gateway": []}


def test_the_fleet_roll_up_is_printed_without_the_repositorys_ansible_cfg(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed collection does not ship ansible.cfg: the roll-up must not need show_custom_stats."""
    monkeypatch.setenv("ANSIBLE_SHOW_CUSTOM_STATS", "false")
    result = run_playbook("status.yml", None, "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert '"webrtc_unbound_dns"' not in result.stdout
    assert "TASK [Show the DNs that cannot take calls, every gateway of the run]" in result.stdout
    assert '"lab-gateway": [' in result.stdout
