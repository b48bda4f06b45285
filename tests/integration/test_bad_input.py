"""Bad input never gets past the first checks: the matrix is data (bad_inputs.yml), one test per
row and playbook. Each run fails before anything changes, naming the variable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab import run_playbook
from lab.snapshot import snapshot

ROWS: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "bad_inputs.yml").read_text())


@pytest.mark.parametrize("playbook", ["revert.yml", "rollback.yml"])
@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_bad_input_is_refused_before_any_change(row: dict[str, Any], playbook: str) -> None:
    before = snapshot()
    result = run_playbook(playbook, row["vars"])
    after = snapshot()
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "changed: [" not in output, "something changed before the input was refused"
    assert row["expect"] in output, output[-2000:]
    for other_rule in row.get("unexpected", []):
        assert other_rule not in refusal(output), f"the refusal names another rule ({other_rule}): {refusal(output)}"
    assert after == before
    for secret in secrets_of(row["vars"]):
        assert secret not in output, f"the refused secret of row {row['id']} was printed"


def refusal(output: str) -> str:
    """What the run refused with: the messages of its "fatal:" and "failed:" results (one per
    broken rule; an argument-spec failure's errors, not the whole spec it prints)."""
    messages: list[str] = []
    for line in output.splitlines():
        if not line.startswith(("fatal: [", "failed: [")):
            continue
        head, _, body = line.partition(" => ")
        try:
            result = json.loads(body)
        except ValueError:
            messages.append(line)
            continue
        messages += [head, str(result.get("msg", "")), *map(str, result.get("argument_errors", []))]
    return "\n".join(messages)


def secrets_of(variables: dict[str, Any]) -> list[str]:
    """The secret values a row sets (they must never be printed, refused or not)."""
    found = [str(v) for k, v in variables.items() if k.endswith(("_password", "_secret")) and v]
    found += [str(d.get("password")) for d in variables.get("webrtc_dns") or [] if isinstance(d, dict)]
    return [value for value in found if len(value) >= 6 and value != "None"]
