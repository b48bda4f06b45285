"""The gateway-state reporter (roles/gateway/files/gateway_state.py), loaded as a module: it is a
file the roles install on the gateway host, not part of an importable package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PATH = Path(__file__).resolve().parents[2] / "roles/gateway/files/gateway_state.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gateway_state", PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
