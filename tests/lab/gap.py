"""Measure what a switch does to the DNs' bindings at the Genesys stand-in, as seen from outside.

A sampler reads the stand-in's bindings every 100 ms (JSON-RPC ul.dump) while the clients,
JsSIP over wss set to reconnect like the Electron app, keep running. A sample the stand-in
did not answer counts as unbound for every DN (it is no proof of a binding). From the samples:
  gap_ms        the longest time any DN had no binding at all (0 = never seen unbound;
                resolution: the 100 ms sampling interval)
  dns_unbound   how many DNs were ever seen unbound
  missed        samples the stand-in did not answer
  transitions   per DN, every change between bound and unbound (time since the start, bound)
  leftovers     contacts of the old mode still at the stand-in after the switch settled
  outage_ms     per DN, the clients' outage: socket closed to registered again
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lab import genesys_bindings, spawn_hold_client

Bindings = dict[str, list[dict[str, Any]]]
MISSED: Bindings = {}  # a sample the stand-in did not answer: nothing proven bound


@dataclass
class Sampler:
    dns: list[str]
    interval: float = 0.1
    samples: list[tuple[float, Bindings]] = field(default_factory=list)
    missed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        def run() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.samples.append((time.time(), genesys_bindings()))
                except OSError:
                    self.missed += 1
                    self.samples.append((time.time(), MISSED))
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def transitions(self, started: float) -> dict[str, list[tuple[float, bool]]]:
        """Per DN, each change between bound and unbound: (seconds since `started`, bound)."""
        changes: dict[str, list[tuple[float, bool]]] = {}
        for dn in self.dns:
            last: bool | None = None
            for stamp, bindings in self.samples:
                bound = bool(bindings.get(dn))
                if bound != last:
                    changes.setdefault(dn, []).append((round(stamp - started, 2), bound))
                    last = bound
        return changes

    def gaps_ms(self) -> dict[str, float]:
        """Per DN, the longest run of samples without any binding (first to last unbound sample)."""
        gaps: dict[str, float] = {}
        for dn in self.dns:
            longest, start = 0.0, None
            for stamp, bindings in self.samples:
                if bindings.get(dn):
                    if start is not None:
                        longest = max(longest, (stamp - start) * 1000 + self.interval * 1000)
                    start = None
                elif start is None:
                    start = stamp
            if start is not None:
                longest = max(longest, (self.samples[-1][0] - start) * 1000 + self.interval * 1000)
            gaps[dn] = round(longest)
        return gaps


@dataclass
class Clients:
    """Held JsSIP clients whose events are collected in the background."""

    proc: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)

    def outage_ms(self, since: float) -> dict[str, float]:
        """Per DN, the longest time from a socket close (after `since`) to registered again."""
        outages: dict[str, float] = {}
        down: dict[str, float] = {}
        for event in self.events:
            stamp = event["t"] / 1000
            if stamp < since:
                continue
            dn = event["dn"]
            if event["event"] == "disconnected":
                down.setdefault(dn, stamp)
            elif event["event"] == "registered" and dn in down:
                outages[dn] = max(outages.get(dn, 0.0), round((stamp - down.pop(dn)) * 1000))
        for dn, stamp in down.items():  # never came back
            outages[dn] = float("inf") if stamp else 0.0
        return outages

    def registered(self) -> set[str]:
        state: dict[str, bool] = {}
        for event in self.events:
            if event["event"] in ("registered", "unregistered", "disconnected", "registrationFailed"):
                state[event["dn"]] = event["event"] == "registered"
        return {dn for dn, ok in state.items() if ok}


@contextmanager
def running_clients(users: dict[str, str], *extra: str) -> Iterator[Clients]:
    proc = spawn_hold_client(users, "--reconnect", *extra)
    clients = Clients(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                clients.events.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while clients.registered() != set(users):
            if time.monotonic() > deadline:
                raise AssertionError(f"clients did not register: {clients.events[-10:]}")
            time.sleep(0.1)
        yield clients
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(
    dns: list[str],
    clients: Clients | list[Clients],
    switch: Callable[[], Any],
    old_contact: Callable[[str], bool],
    settle: float = 4,
) -> dict[str, Any]:
    """Run `switch` while sampling; return the figures (see module doc)."""
    sampler = Sampler(dns)
    sampler.start()
    started = time.time()
    try:
        time.sleep(0.5)
        result = switch()
        time.sleep(settle)
    finally:
        sampler.stop()
    took = time.time() - started
    gaps = sampler.gaps_ms()
    final = genesys_bindings()
    leftovers = sum(1 for dn in dns for b in final.get(dn, []) if old_contact(b["contact"]))
    outages: dict[str, float] = {}
    for group in clients if isinstance(clients, list) else [clients]:
        outages.update(group.outage_ms(started))
    return {
        "gap_ms": max(gaps.values()) if gaps else 0,
        "gap_ms_per_dn": gaps,
        "dns_unbound": sum(1 for g in gaps.values() if g > 0),
        "missed": sampler.missed,
        "transitions": sampler.transitions(started),
        "leftovers": leftovers,
        "outage_ms": outages,
        "samples": len(sampler.samples),
        "seconds": round(took, 1),
        "result": result,
        "timeline": [(round(t - started, 2), {dn: len(b.get(dn, [])) for dn in dns}) for t, b in sampler.samples],
    }
