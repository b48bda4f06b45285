"""Every wait of the roles that polls at gateway_poll_interval is bounded by the clock.

A poll costs a module run (0.3-0.8 s on the lab) on top of its delay, so a wait written as
"retries = limit / interval" lasts several times its limit. Each such wait must also stop when
its deadline (a fact set from now() just before) has passed: its `until` reads the clock.
Found by reading the task files, so a new wait written the old way fails here. A wait on an
async job (async_status) is bounded by the job's own `async:` limit, a clock time: Ansible ends
the job then, and the wait sees it finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLOCK = "now(utc=true).timestamp()"


def tasks(items: list[dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks(task.get(key))


def polled_waits(path: Path) -> list[dict[str, Any]]:
    return [
        task
        for task in tasks(yaml.safe_load(path.read_text()))
        if "until" in task
        and "gateway_poll_interval" in str(task.get("delay", ""))
        and "ansible.builtin.async_status" not in task
    ]


FILES = sorted(ROOT.glob("roles/*/tasks/*.yml")) + sorted(ROOT.glob("roles/*/handlers/*.yml"))
WAITS = [(path, task) for path in FILES for task in polled_waits(path)]


def test_the_roles_have_polled_waits() -> None:
    """Not vacuous: the switch's waits are found (clients, static registrations, the bridge,
    the verification, the WebSocket probe, Kamailio's health)."""
    assert len(WAITS) >= 6, [str(path.relative_to(ROOT)) for path, _ in WAITS]


@pytest.mark.parametrize(
    ("path", "task"),
    WAITS,
    ids=[f"{path.relative_to(ROOT)}:{task.get('name', '?')}" for path, task in WAITS],
)
def test_each_polled_wait_stops_at_its_deadline(path: Path, task: dict[str, Any]) -> None:
    assert CLOCK in str(task["until"]), (
        f"{path.relative_to(ROOT)}: '{task.get('name')}' counts polls only; add a deadline "
        f"(set_fact from {CLOCK}) and stop when it has passed"
    )


def test_a_wait_that_counts_polls_only_is_found(tmp_path: Path) -> None:
    bad = tmp_path / "wait.yml"
    bad.write_text(
        "- name: Wait\n  ansible.builtin.command: 'true'\n  register: r\n  until: r.rc == 0\n"
        "  retries: 40\n  delay: '{{ gateway_poll_interval }}'\n"
    )
    (task,) = polled_waits(bad)
    assert CLOCK not in str(task["until"])
