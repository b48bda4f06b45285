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


def image_present(name: str) -> bool:
    found = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return found.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--paths", required=True, help="JSON list of paths relative to --root")
    parser.add_argument("--images", default="", help="comma-separated image names")
    args = parser.parse_args()
    paths: list[str] = json.loads(args.paths)
    print(
        json.dumps(
            {
                "files": {p: describe(os.path.join(args.root, p)) for p in paths},
                "images": {name: image_present(name) for name in args.images.split(",") if name},
            }
        )
    )


if __name__ == "__main__":
    main()
