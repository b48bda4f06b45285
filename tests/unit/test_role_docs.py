"""Each role's README variable table is what scripts/role_docs.py generates from the role's
argument specs: a setting added, removed or redescribed in the specs fails here until the
README is regenerated (`python scripts/role_docs.py --write`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_readme_variable_tables_match_the_argument_specs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_fails_on_drift(tmp_path: Path) -> None:
    """The check is not vacuous: a README whose table lost a row is reported."""
    script = (ROOT / "scripts/role_docs.py").read_text()
    role = tmp_path / "roles/nginx"
    (role / "meta").mkdir(parents=True)
    (role / "meta/argument_specs.yml").write_text((ROOT / "roles/nginx/meta/argument_specs.yml").read_text())
    readme = (ROOT / "roles/nginx/README.md").read_text()
    lines = readme.splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if line.startswith("| `nginx_worker_connections`"))
    (role / "README.md").write_text("".join(lines[:row] + lines[row + 1 :]))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/role_docs.py").write_text(script)
    result = subprocess.run(
        [sys.executable, str(tmp_path / "scripts/role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "nginx" in result.stdout, result.stdout + result.stderr


def _specs(role: Path) -> dict[str, Any]:
    specs: dict[str, Any] = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    return specs


def test_each_shared_setting_is_declared_once_in_the_gateway_role() -> None:
    """Issue 15: the shared settings (webrtc_*) are declared in the gateway role only; every one
    another role uses is among them."""
    from role_docs import shared_used  # noqa: PLC0415

    declared = {name for name in _specs(ROOT / "roles/gateway")["main"]["options"] if name.startswith("webrtc_")}
    for role in sorted((ROOT / "roles").iterdir()):
        if role.name == "gateway" or not (role / "meta/argument_specs.yml").exists():
            continue
        for entry, spec in _specs(role).items():
            again = [name for name in spec.get("options") or {} if name.startswith("webrtc_")]
            assert again == [], f"{role.name} {entry} declares shared settings again: {again}"
        undeclared = set(shared_used(role)) - declared
        assert not undeclared, f"{role.name} uses shared settings the gateway role does not declare: {undeclared}"
    # validate.yml, the checks the switch runs first, covers the same set
    assert set(_specs(ROOT / "roles/gateway")["validate.yml"]["options"]) == declared


class _SpecLoader(yaml.SafeLoader):
    """Reads `!unsafe` values (secrets' defaults) as the plain strings they are."""


_SpecLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def test_each_roles_defaults_and_its_argument_specs_name_the_same_settings() -> None:
    """Issue 30: every tunable is in defaults/ (an inventory can change it) and in the main entry
    point's argument spec (checked and documented), and nothing is in one only."""
    checked = 0
    for role in sorted((ROOT / "roles").iterdir()):
        specs_file, defaults_file = role / "meta/argument_specs.yml", role / "defaults/main.yml"
        if not specs_file.exists():
            continue
        options = set(yaml.load(specs_file.read_text(), Loader=_SpecLoader)["argument_specs"]["main"]["options"] or {})
        defaults_text = defaults_file.read_text() if defaults_file.exists() else ""
        defaults = set(yaml.load(defaults_text, Loader=_SpecLoader) or {})
        assert sorted(defaults - options) == [], f"{role.name}: in defaults/main.yml, not in the argument specs"
        assert sorted(name for name in options - defaults) == [], f"{role.name}: in the argument specs, no default"
        checked += 1
    assert checked >= 6


def test_no_role_keeps_a_tunable_in_vars() -> None:
    """vars/main.yml outranks the inventory: only internal names (`_` first) and fixed tables live there."""
    fixed = {"gateway_project_dirs", "gateway_modes"}
    for role in sorted((ROOT / "roles").iterdir()):
        vars_file = role / "vars/main.yml"
        if vars_file.exists():
            names = set(yaml.load(vars_file.read_text(), Loader=_SpecLoader) or {})
            assert sorted(n for n in names if not n.startswith("_") and n not in fixed) == [], role.name
