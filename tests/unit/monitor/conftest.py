"""The monitor package (roles/registration_monitor/files/registration_monitor) is installed into
the virtualenv with the project (`make venv`); the tests import it from its place in the role."""

from __future__ import annotations

import sys

# The role copies files/registration_monitor/ as it is into the image's build context: no
# __pycache__ may appear there because the tests imported the package.
sys.dont_write_bytecode = True
