"""Benchmarks of the webrtc-genesys embedded lab (see bench/README.md and BENCHMARKS.md).

Run from the repository root: `.venv/bin/python -m bench.run --mode full` (`make bench`).
The lab helpers (`lab`) are installed into the virtualenv with this package (`make venv`).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
