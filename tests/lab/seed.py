"""The seed's manual switch procedure, scripted, as the baseline the playbooks are measured against.

revert:   put the kamailio-mode nginx.conf and pjsip.conf in place (the seed edits the two files),
          `docker compose restart nginx asterisk`, `docker compose up -d kamailio`.
rollback: the mirror image: static-mode files, `restart nginx asterisk`, `stop kamailio`.
The files are the ones the playbooks rendered for each mode (captured by `capture`), so both
procedures install the same configuration and only the procedure differs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab import PROJECT, compose

SEED_FILES = ("nginx/nginx.conf", "asterisk/etc/pjsip.conf")


def capture(into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for relative in SEED_FILES:
        shutil.copy2(PROJECT / relative, into / relative.replace("/", "__"))


def _install(saved: Path) -> None:
    for relative in SEED_FILES:
        shutil.copy2(saved / relative.replace("/", "__"), PROJECT / relative)


def seed_revert(kamailio_files: Path) -> None:
    _install(kamailio_files)
    compose("restart", "nginx", "asterisk")
    compose("up", "-d", "kamailio")
    (PROJECT / "mode").write_text("kamailio\n")


def seed_rollback(static_files: Path) -> None:
    _install(static_files)
    compose("restart", "nginx", "asterisk")
    compose("stop", "kamailio")
    (PROJECT / "mode").write_text("static\n")
