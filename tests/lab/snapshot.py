"""What "nothing changed" means on the gateway: file checksums under the compose project
(backups aside), the backup directories, and the containers with their ids and states."""

from __future__ import annotations

import hashlib
from typing import Any

from lab import PROJECT, compose


def snapshot() -> dict[str, Any]:
    files = {
        str(p.relative_to(PROJECT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(PROJECT.rglob("*"))
        if p.is_file() and "backup" not in p.relative_to(PROJECT).parts
    }
    backups = sorted(p.name for p in (PROJECT / "backup").glob("*"))
    listing = compose("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Service}} {{.State}}")
    return {"files": files, "backups": backups, "containers": sorted(listing.splitlines())}
