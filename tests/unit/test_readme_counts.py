"""The README's "What we test, in numbers" table is computed from the test data, not typed in:
this test fails when a row is added to a matrix or corpus and the table was not updated."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from lab.hostile import FOREIGN_ORIGINS, ROWS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PLAYBOOKS = 2  # revert.yml and rollback.yml
TRANSPORTS = 2  # UDP to Kamailio, wss through nginx


def table_row(label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)} \|.*$", README, re.MULTILINE)
    assert match, f"README has no '{label}' row in its numbers table"
    return match.group(0)


def test_bad_inputs_count() -> None:
    rows = yaml.safe_load((ROOT / "tests/integration/bad_inputs.yml").read_text())
    assert f"{len(rows)} inventories x {PLAYBOOKS} playbooks = **{len(rows) * PLAYBOOKS} runs**" in table_row(
        "bad inputs tried"
    )


def test_faults_count() -> None:
    faults = re.findall(r"^def test_", (ROOT / "tests/integration/test_faults.py").read_text(), re.MULTILINE)
    assert f"**{len(faults)}**" in table_row("faults survived")


def test_hostile_messages_count() -> None:
    row = table_row("hostile messages sent")
    assert f"{len(ROWS)} messages x {TRANSPORTS} transports = **{len(ROWS) * TRANSPORTS}**" in row
    assert f"{len(FOREIGN_ORIGINS)} foreign-Origin upgrades" in row
