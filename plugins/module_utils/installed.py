"""Files the gateway's roles install under the project directory: compare, validate, write.

Shared by the ``gateway_files`` module. A file is wanted as {content, mode}; it is installed
owned by root, written to a temporary file in its own directory, checked there by an optional
validation command (``%s`` is the temporary file, as in ansible.builtin.template), then renamed
over the old one, so a reader never sees half a file and a rejected config never lands."""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# (argv) -> (rc, stdout, stderr)
Runner = Callable[[list[str]], tuple[int, str, str]]
OWNER = (0, 0)


class InstallError(Exception):
    """A file could not be installed; the message names it (never its content)."""


@dataclass(frozen=True)
class Wanted:
    path: str  # relative to the root
    content: str
    mode: int
    validate: str | None = None
    secret: bool = False


def wanted_from(files: Mapping[str, Mapping[str, Any]], secrets: Mapping[str, str]) -> list[Wanted]:
    """The module's {path: {content, mode, validate, secret}} as Wanted, in the given order, a
    secret file's content taken from secrets. An entry without content (a file another task
    provides) is left out; a path leaving the root, a missing mode or a secret without its
    content fails."""
    out = []
    for path, spec in files.items():
        if os.path.isabs(path) or ".." in path.split("/"):
            raise InstallError(f"{path}: must be a path inside the project directory")
        content = secrets.get(path) if spec.get("secret") else spec.get("content")
        if spec.get("secret") and content is None:
            raise InstallError(f"{path}: marked secret, but secret_files holds no content for it")
        if content is None:
            continue
        mode = spec.get("mode")
        if mode is None:
            raise InstallError(f"{path}: no mode given")
        out.append(
            Wanted(path, str(content), int(str(mode), 8), spec.get("validate") or None, bool(spec.get("secret")))
        )
    unknown = sorted(set(secrets) - {path for path, spec in files.items() if spec.get("secret")})
    if unknown:
        raise InstallError(f"secret_files names files not listed as secret in files: {', '.join(unknown)}")
    return out


def differs(root: str, want: Wanted) -> bool:
    """Whether the installed file is missing, or differs in content, mode or owner."""
    target = os.path.join(root, want.path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return True
    if stat.S_IMODE(info.st_mode) != want.mode or (info.st_uid, info.st_gid) != OWNER:
        return True
    with open(target, "rb") as handle:
        have = hashlib.sha256(handle.read()).digest()
    return have != hashlib.sha256(want.content.encode()).digest()


def current(root: str, path: str) -> str:
    """The installed file's text ('' when missing), for a diff."""
    try:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def install(root: str, want: Wanted, run: Runner) -> None:
    """Write one file: temporary file, validation, rename. Parent directories are created (0755)."""
    target = os.path.join(root, want.path)
    directory = os.path.dirname(target)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".gateway_files.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(want.content.encode())
        os.chmod(temporary, want.mode)
        os.chown(temporary, *OWNER)
        if want.validate:
            if "%s" not in want.validate:
                raise InstallError(f"{want.path}: the validation command has no %s")
            argv = [temporary if part == "%s" else part.replace("%s", temporary) for part in shlex.split(want.validate)]
            rc, out_text, err_text = run(argv)
            if rc != 0:
                raise InstallError(
                    f"{want.path}: rejected by its validation ({argv[0]} ..., exit {rc}): "
                    f"{(err_text or out_text).strip()[-600:]}"
                )
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
