"""Render the roles' templates offline, the way ansible.builtin.template does.

Variables are assembled as a play on the lab inventory would see them: every role's defaults
(the gateway role's first, it is shared), then inventories/lab/group_vars/gateways.yml, then the
roles' vars/main.yml, then per-test overrides (extra vars). Files are loaded with Ansible's own
DataLoader and trusted as templates, so lazy references ("{{ webrtc_gateway_address }}") resolve
through Ansible's Templar with all of its filters (comment, to_nice_json, basename...).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT: Final = Path(__file__).resolve().parents[2]
ROLES: Final = ROOT / "roles"
LAB_GROUP_VARS: Final = ROOT / "inventories" / "lab" / "group_vars" / "gateways.yml"
MODES: Final = ("kamailio", "static")
# The gateway role's defaults are shared by every role; the playbooks load it first.
FIRST_ROLE: Final = "gateway"
# ansible.builtin.template's defaults.
TEMPLATE_OVERRIDES: Final[dict[str, Any]] = {"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"}

_LOADER: Final = DataLoader()


def role_names() -> list[str]:
    names = sorted(path.name for path in ROLES.iterdir() if path.is_dir())
    names.remove(FIRST_ROLE)
    return [FIRST_ROLE, *names]


def all_templates() -> list[Path]:
    """Every template of every role."""
    return sorted(ROLES.glob("*/templates/**/*.j2"))


def template_path(role: str, name: str) -> Path:
    path = ROLES / role / "templates" / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


@functools.cache
def _load_vars_file(path: Path) -> Mapping[str, Any]:
    data = _LOADER.load_from_file(str(path), trusted_as_template=True)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError(f"{path} holds no mapping of variables")
    return data


def lab_variables(mode: str, only_roles: tuple[str, ...] | None = None, **overrides: Any) -> dict[str, Any]:
    """The variables a play on the lab inventory sees in ``mode``, plus ``overrides`` (as extra vars).

    ``only_roles``: the roles loaded (default: all), e.g. ("gateway",) for lab.yml, which loads
    the gateway role alone."""
    if mode not in MODES:
        raise ValueError(f"unknown webrtc_mode {mode!r}")
    variables: dict[str, Any] = {}
    roles = [role for role in role_names() if only_roles is None or role in only_roles]
    for role in roles:
        defaults = ROLES / role / "defaults" / "main.yml"
        if defaults.is_file():
            variables.update(_load_vars_file(defaults))
    variables.update(_load_vars_file(LAB_GROUP_VARS))
    for role in roles:
        role_vars = ROLES / role / "vars" / "main.yml"
        if role_vars.is_file():
            variables.update(_load_vars_file(role_vars))
    variables["webrtc_mode"] = mode
    variables.update(overrides)
    variables.setdefault("ansible_managed", "Ansible managed")
    return variables


def render(template: Path, variables: Mapping[str, Any]) -> str:
    """``template`` rendered with ``variables`` by Ansible's Templar, as the template module would."""
    task_vars = dict(variables)
    task_vars.update(
        template_host=os.uname().nodename,
        template_path=str(template),
        template_fullpath=str(template),
        template_destpath=None,
    )
    templar = Templar(loader=_LOADER, variables=task_vars).copy_with_new_env(
        searchpath=[str(template.parent), str(template.parent.parent)]
    )
    result = templar.template(
        trust_as_template(template.read_text(encoding="utf-8")),
        escape_backslashes=False,
        overrides=TEMPLATE_OVERRIDES,
    )
    if result is None:
        return ""
    if not isinstance(result, str):
        raise TypeError(f"{template} rendered to {type(result).__name__}, not text")
    return result


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """A Jinja expression (``{{ ... }}``) evaluated by Ansible's Templar with ``variables``."""
    templar = Templar(loader=_LOADER, variables=dict(variables))
    return templar.template(trust_as_template(expression))


@functools.cache
def render_lab(role: str, name: str, mode: str, **overrides: Any) -> str:
    """A role's template rendered for the lab inventory in ``mode`` (cached: templates do not change in a run)."""
    return render(template_path(role, name), lab_variables(mode, **overrides))
