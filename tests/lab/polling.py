"""Polling, with the standard library only: the lab helpers use it, and so do the test halves
that run inside a container of the gateway image (copied there flat, beside them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15, interval: float = 0.2) -> T:
    """Poll until probe() returns something truthy; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
