"""Markers of the unit suite, and the skip of daemon checks where the gateway image is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lab.daemons import unavailable_reason

UNIT_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "daemon: validates rendered configs with the real daemons (nginx, Kamailio, Asterisk) in throwaway "
        "containers of the gateway image, with --network none; skipped when the image is not available",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    daemon_items = [item for item in items if item.get_closest_marker("daemon") and item.path.is_relative_to(UNIT_DIR)]
    if not daemon_items:
        return
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("WEBRTC_REQUIRE_DAEMONS") == "1":
        # make test / CI: the image is built by `make lab` first, so a skip would hide a gap.
        raise pytest.UsageError(f"daemon checks required but unavailable: {reason}")
    for item in daemon_items:
        item.add_marker(pytest.mark.skip(reason=reason))
