"""A role's one list of files (its render.yml), split into the two arguments of the gateway_files
module: what may be shown (the metadata of every file, the content of the others) and the content
of the secret ones, which travels in the module's no_log argument only. Documented in
gateway_files_args.yml."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_SENT = ("content", "mode", "validate")


def gateway_files_args(rendered: Mapping[str, Mapping[str, Any]], part: str) -> dict[str, Any]:
    """part 'files': {path: {mode, validate, content}} with no content for a secret file;
    part 'secret_files': {path: content} of the secret files only."""
    if part not in ("files", "secret_files"):
        raise ValueError(f"gateway_files_args: part must be 'files' or 'secret_files' (got {part!r})")
    if part == "secret_files":
        return {
            path: spec["content"]
            for path, spec in rendered.items()
            if spec.get("secret") and spec.get("content") is not None
        }
    out: dict[str, Any] = {}
    for path, spec in rendered.items():
        entry = {key: spec[key] for key in _SENT if spec.get(key) is not None}
        if spec.get("secret"):
            entry.pop("content", None)
            entry["secret"] = True
        out[path] = entry
    return out


class FilterModule:
    """gcti.webrtc_genesys.gateway_files_args."""

    def filters(self) -> dict[str, Callable[..., dict[str, Any]]]:
        return {"gateway_files_args": gateway_files_args}
