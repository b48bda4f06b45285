"""Puts the monitor package (roles/registration_monitor/files/registration_monitor) on the import path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

# The role copies files/registration_monitor/ as it is into the image's build context: no
# __pycache__ may appear there because the tests imported the package.
sys.dont_write_bytecode = True

PACKAGE_PARENT: Final = Path(__file__).resolve().parents[3] / "roles" / "registration_monitor" / "files"
if str(PACKAGE_PARENT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_PARENT))
