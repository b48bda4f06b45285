#!/usr/bin/env python3
"""Generate each role's README variable table from its meta/argument_specs.yml (entry point main).

    python scripts/role_docs.py --check   # exit 1 and name the roles whose README drifted
    python scripts/role_docs.py --write   # rewrite the tables

The table sits between the README's "| Variable | Default | Description |" header and the end
of that table. Rules: C(x), O(x) and V(x) become `x`, I(x) *x*; choices, required and no_log are
appended; a list default longer than three items is summarised. The shared settings (webrtc_*)
are declared once, in the gateway role; every other role's table ends with one row naming the
shared settings its files use (found in its tasks, templates, defaults, vars and handlers).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Ansible's !unsafe (a value never templated): read as its plain string.
yaml.SafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
HEADER = "| Variable | Default | Description |\n| --- | --- | --- |\n"
_MARKUP = re.compile(r"\b([COVI])\(([^)]*)\)")


def markup(text: str) -> str:
    return _MARKUP.sub(lambda m: f"*{m.group(2)}*" if m.group(1) == "I" else f"`{m.group(2)}`", text)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def default_text(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return ""
    value = spec["default"]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list) and len(value) > 3:  # longer lists: summarised
        return f"{len(value)} items, see `defaults/main.yml`"
    if isinstance(value, (list, dict)):
        return f"`{yaml.safe_dump(value, default_flow_style=True).strip()}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def description(role: str, name: str, spec: dict[str, Any]) -> str:
    lines = spec.get("description", [])
    lines = [lines] if isinstance(lines, str) else list(lines)
    text = markup(" ".join(lines))
    if spec.get("choices"):
        text += " One of: " + ", ".join(f"`{c}`" for c in spec["choices"]) + "."
    if spec.get("required"):
        text += " Required."
    if spec.get("no_log"):
        text += " Secret (`no_log`)."
    return text


def rows(role: str, options: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, spec in options.items():
        shown = f"{prefix}{name}"
        cells = [f"`{shown}`", cell(default_text(spec)), cell(description(role, name, spec))]
        out.append(("| " + " | ".join(cells) + " |").replace("|  |", "| |"))
        if spec.get("options"):
            out += rows(role, spec["options"], f"{shown}[]." if spec.get("type") == "list" else f"{shown}.")
    return out


_SHARED = re.compile(r"(?<![.\w])webrtc_[a-z_]+\b")  # not the collection name in an FQCN (gcti.webrtc_genesys.x)
_PLAY_LEVEL = {"webrtc_switch_serial", "webrtc_switch_max_fail_percentage", "webrtc_unbound_dns"}


def shared_used(role_dir: Path) -> list[str]:
    """The shared settings a role's files use (play keywords and stats names left out)."""
    used: set[str] = set()
    for folder in ("tasks", "templates", "defaults", "vars", "handlers"):
        for path in sorted((role_dir / folder).rglob("*")) if (role_dir / folder).is_dir() else []:
            if path.is_file():
                used |= set(_SHARED.findall(path.read_text(errors="replace")))
    return sorted(used - _PLAY_LEVEL)


def table(role_dir: Path) -> str:
    specs = yaml.safe_load((role_dir / "meta/argument_specs.yml").read_text())["argument_specs"]
    lines = rows(role_dir.name, specs["main"].get("options", {}))
    if role_dir.name != "gateway":
        used = ", ".join(f"`{name}`" for name in shared_used(role_dir))
        lines.append(f"| shared settings | | Declared once, in the gateway role (load it first): {used or 'none'}. |")
    return HEADER + "\n".join(lines) + "\n"


def replace_table(readme: str, new: str) -> str:
    start = readme.index(HEADER)
    end = start + len(HEADER)
    while end < len(readme) and readme.startswith("| ", end):
        end = readme.index("\n", end) + 1
    return readme[:start] + new + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true")
    action.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    drifted = []
    for role_dir in sorted((ROOT / "roles").iterdir()):
        readme = role_dir / "README.md"
        if not (role_dir / "meta/argument_specs.yml").exists() or not readme.exists():
            continue
        current = readme.read_text()
        wanted = replace_table(current, table(role_dir))
        if wanted != current:
            drifted.append(role_dir.name)
            if args.write:
                readme.write_text(wanted)
    if drifted and args.check:
        print(f"README variable tables out of date: {', '.join(drifted)} (run scripts/role_docs.py --write)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
