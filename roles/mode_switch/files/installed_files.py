#!/usr/bin/env python3
"""What is installed in a gateway's compose project, read in one pass for the switch's quick check.

Prints JSON: {"files": {path: {"sha256": hex | null, "mode": "0644", "owner": "uid:gid"} | null},
"images": {name: bool}} for the given paths (relative to --root; a directory has no sha256) and
image names. It reads and changes nothing else;
the controller compares the digests with the content the roles would install.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import subprocess
from typing import Any


def describe(path: str) -> dict[str, str | None] | None:
    try:
        info = os.stat(path)
        digest = None
        if not stat.S_ISDIR(info.st_mode):
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        return {"sha256": digest, "mode": f"{stat.S_IMODE(info.st_mode):04o}", "owner": f"{info.st_uid}:{info.st_gid}"}
    except OSError:
        return None


# An image built on another of the project's images carries "<base name>@<base id>" here.
BASE_LABEL = "webrtc-genesys.base"


def inspect(name: str) -> dict[str, Any] | None:
    found = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    if found.returncode != 0:
        return None
    info: dict[str, Any] = json.loads(found.stdout)[0]
    return info


def image_present(spec: str) -> bool:
    """`name`: the image exists. `name<base`: it exists and was built on what the image `base`
    is now (its BASE_LABEL holds "<base>@<base id>"): a rebuilt gateway image makes the
    monitor image out of date."""
    name, _, base = spec.partition("<")
    info = inspect(name)
    if info is None:
        return False
    if not base:
        return True
    built_on = ((info.get("Config") or {}).get("Labels") or {}).get(BASE_LABEL)
    current = inspect(base)
    return current is not None and built_on == f"{base}@{current.get('Id')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--paths", required=True, help="JSON list of paths relative to --root")
    parser.add_argument("--images", default="", help="comma-separated image names (name<base: built on base)")
    args = parser.parse_args()
    paths: list[str] = json.loads(args.paths)
    print(
        json.dumps(
            {
                "files": {p: describe(os.path.join(args.root, p)) for p in paths},
                "images": {spec.partition("<")[0]: image_present(spec) for spec in args.images.split(",") if spec},
            }
        )
    )


if __name__ == "__main__":
    main()
