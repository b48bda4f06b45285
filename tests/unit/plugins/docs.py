"""ansible-doc of one of the collection's plugins, as JSON, run offline against the checkout."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def ansible_doc(name: str, kind: str = "module") -> dict[str, Any]:
    """The documentation ansible-doc shows for gcti.webrtc_genesys.<name> (fails if it cannot parse it)."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv/collections")}
    shown = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-doc"), "-t", kind, "--json", f"gcti.webrtc_genesys.{name}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    doc: dict[str, Any] = json.loads(shown.stdout)[f"gcti.webrtc_genesys.{name}"]
    return doc
