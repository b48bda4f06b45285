"""Benchmarks of the webrtc-genesys embedded lab (see bench/README.md and BENCHMARKS.md).

Run from the repository root: `.venv/bin/python -m bench.run --mode full` (`make bench`).
The lab helpers live in tests/lab; they are importable once tests/ is on sys.path.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
