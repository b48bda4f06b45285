#!/usr/bin/env python3
"""Move the gateway image's package pins to what the Debian archive has now.

    python3 scripts/image_pins.py [--base-image local/debian:sid]     (make image-pins)

Asks the archive, in a throwaway container of the base image, for the candidate version of
each of gateway_image_packages (roles/gateway/defaults/main.yml), and rewrites the
gateway_image_pins block there. Nothing else is changed. Then `make test` tests the new pins
(the lab rebuilds the image, since its Dockerfile changed): commit them only if it passes.
Stdlib only, so that it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

DEFAULTS = Path(__file__).resolve().parents[1] / "roles/gateway/defaults/main.yml"
BEGIN = "# BEGIN gateway_image_pins (scripts/image_pins.py)\n"
END = "# END gateway_image_pins\n"


def packages(text: str) -> list[str]:
    """gateway_image_packages, read from the defaults file (a plain YAML list of names)."""
    block = re.search(r"^gateway_image_packages:\n((?:  - \S+\n)+)", text, re.MULTILINE)
    if not block:
        raise SystemExit(f"{DEFAULTS}: no gateway_image_packages list")
    return re.findall(r"^  - (\S+)$", block.group(1), re.MULTILINE)


def candidates(base_image: str, names: list[str]) -> dict[str, str]:
    """The version apt would install for each package now (apt-cache policy's Candidate)."""
    script = "apt-get update -qq >/dev/null && apt-cache policy " + " ".join(names)
    result = subprocess.run(
        ["docker", "run", "--rm", "--pull", "never", base_image, "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"apt-cache policy in {base_image} failed:\n{result.stderr[-2000:]}")
    found = dict(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)", result.stdout, re.MULTILINE))
    missing = [name for name in names if found.get(name, "(none)") == "(none)"]
    if missing:
        raise SystemExit(f"the archive has no version of: {', '.join(missing)}")
    return {name: found[name] for name in names}


def rewrite(text: str, pins: dict[str, str]) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    body = "gateway_image_pins:\n" + "".join(f'  {name}: "{version}"\n' for name, version in pins.items())
    return text[:start] + body + text[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default="local/debian:sid")
    args = parser.parse_args()
    text = DEFAULTS.read_text()
    pins = candidates(args.base_image, packages(text))
    new = rewrite(text, pins)
    old_pins = dict(re.findall(r'^  (\S+): "(.*)"$', text[text.index(BEGIN) : text.index(END)], re.MULTILINE))
    for name, version in pins.items():
        before = old_pins.get(name)
        print(f"{name}: {before} -> {version}" if before != version else f"{name}: {version} (unchanged)")
    DEFAULTS.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
