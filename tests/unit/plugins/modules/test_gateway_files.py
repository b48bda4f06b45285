"""The gateway_files module (plugins/modules/gateway_files.py, plugins/module_utils/installed.py)
and the filter that feeds it (plugins/filter/gateway_file_lists.py), on real files in a temporary
directory: only what differs is written, secret files come first and are never shown, a
validation sees the new file before it lands and a rejected one never lands, check mode writes
nothing, and ansible-doc shows the module and the filter."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from ..docs import ansible_doc

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".venv/collections"))

from ansible_collections.gcti.webrtc_genesys.plugins.filter.gateway_file_lists import (  # noqa: E402
    gateway_files_args,
)
from ansible_collections.gcti.webrtc_genesys.plugins.module_utils.installed import InstallError  # noqa: E402
from ansible_collections.gcti.webrtc_genesys.plugins.modules.gateway_files import ARGUMENT_SPEC, apply  # noqa: E402

SECRET = "s3cret-never-shown"
RENDERED: dict[str, dict[str, Any]] = {
    "kamailio/genesys-auth.cfg": {
        "mode": "0640",
        "secret": True,
        "notify": "Restart Kamailio",
        "content": f'#!substdef "!PASS!{SECRET}!"\n',
    },
    "kamailio/kamailio-proxy.cfg": {"mode": "0640", "notify": "Restart Kamailio", "content": "loadmodule x\n"},
    "asterisk/etc/keys/dtls.key": {"mode": None, "content": None},  # provided by another task
}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="installs files owned by root")


class Runner:
    def __init__(self, rc: int = 0) -> None:
        self.rc = rc
        self.seen: list[tuple[list[str], str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        path = next(a for a in argv if ".gateway_files." in a)
        self.seen.append((argv, Path(path).read_text()))
        return self.rc, "", "" if self.rc == 0 else "syntax error in line 1"


def run(
    root: Path, rendered: dict[str, Any], runner: Runner | None = None, *, check: bool = False, diff: bool = True
) -> dict[str, Any]:
    return apply(
        str(root),
        gateway_files_args(rendered, "files"),
        gateway_files_args(rendered, "secret_files"),
        runner or Runner(),
        check_mode=check,
        want_diff=diff,
    )


def test_the_filter_keeps_secret_content_out_of_the_shown_argument() -> None:
    shown = gateway_files_args(RENDERED, "files")
    secret = gateway_files_args(RENDERED, "secret_files")
    assert SECRET not in json.dumps(shown)
    assert shown["kamailio/genesys-auth.cfg"] == {"mode": "0640", "secret": True}
    assert secret == {"kamailio/genesys-auth.cfg": RENDERED["kamailio/genesys-auth.cfg"]["content"]}
    assert "notify" not in shown["kamailio/kamailio-proxy.cfg"]
    with pytest.raises(ValueError, match="part must be"):
        gateway_files_args(RENDERED, "both")


@needs_root
def test_installs_what_differs_secret_first_then_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, RENDERED)
    assert result["changed_paths"] == ["kamailio/genesys-auth.cfg", "kamailio/kamailio-proxy.cfg"]
    info = (tmp_path / "kamailio/genesys-auth.cfg").stat()
    assert stat.S_IMODE(info.st_mode) == 0o640 and (info.st_uid, info.st_gid) == (0, 0)
    assert (tmp_path / "kamailio/kamailio-proxy.cfg").read_text() == "loadmodule x\n"
    assert not (tmp_path / "asterisk").exists()
    # the diff shows the shown file only
    assert [d["after_header"] for d in result["diff"]] == ["kamailio/kamailio-proxy.cfg"]
    assert SECRET not in json.dumps(result)
    again = run(tmp_path, RENDERED)
    assert not again["changed"] and again["changed_paths"] == []


@needs_root
def test_a_mode_or_content_drift_is_put_right(tmp_path: Path) -> None:
    run(tmp_path, RENDERED)
    os.chmod(tmp_path / "kamailio/kamailio-proxy.cfg", 0o644)
    (tmp_path / "kamailio/genesys-auth.cfg").write_text("tampered\n")
    os.chmod(tmp_path / "kamailio/genesys-auth.cfg", 0o640)
    result = run(tmp_path, RENDERED)
    assert sorted(result["changed_paths"]) == ["kamailio/genesys-auth.cfg", "kamailio/kamailio-proxy.cfg"]
    assert stat.S_IMODE((tmp_path / "kamailio/kamailio-proxy.cfg").stat().st_mode) == 0o640
    assert SECRET in (tmp_path / "kamailio/genesys-auth.cfg").read_text()


@needs_root
def test_the_validation_sees_the_new_file_and_a_rejected_one_never_lands(tmp_path: Path) -> None:
    rendered = {
        **RENDERED,
        "kamailio/kamailio-proxy.cfg": {**RENDERED["kamailio/kamailio-proxy.cfg"], "validate": "kamailio -c -f %s"},
    }
    runner = Runner()
    run(tmp_path, rendered, runner)
    [(argv, seen)] = runner.seen
    assert argv[:3] == ["kamailio", "-c", "-f"] and seen == "loadmodule x\n"
    # the secret it includes was in place first
    assert (tmp_path / "kamailio/genesys-auth.cfg").exists()
    broken = {
        **rendered,
        "kamailio/kamailio-proxy.cfg": {**rendered["kamailio/kamailio-proxy.cfg"], "content": "loadmodule y\n"},
    }
    with pytest.raises(InstallError, match=r"kamailio/kamailio-proxy.cfg: rejected by its validation .*syntax error"):
        run(tmp_path, broken, Runner(rc=1))
    assert (tmp_path / "kamailio/kamailio-proxy.cfg").read_text() == "loadmodule x\n"
    assert [p.name for p in (tmp_path / "kamailio").iterdir() if p.name.startswith(".")] == []


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    runner = Runner()
    result = run(
        tmp_path,
        {**RENDERED, "nginx/nginx.conf": {"mode": "0644", "content": "x", "validate": "t %s"}},
        runner,
        check=True,
    )
    assert result["changed"] and "nginx/nginx.conf" in result["changed_paths"]
    assert list(tmp_path.iterdir()) == [] and runner.seen == []


@pytest.mark.parametrize(
    ("files", "secrets", "message"),
    [
        ({"../etc/passwd": {"mode": "0644", "content": "x"}}, {}, "inside the project directory"),
        ({"/etc/passwd": {"mode": "0644", "content": "x"}}, {}, "inside the project directory"),
        ({"a": {"content": "x"}}, {}, "no mode"),
        ({"a": {"mode": "0600", "secret": True}}, {}, "secret_files holds no content"),
        ({"a": {"mode": "0600", "content": "x"}}, {"a": "y"}, "not listed as secret"),
    ],
)
def test_bad_arguments_fail_naming_the_path(
    files: dict[str, Any], secrets: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(InstallError, match=message):
        apply(str(tmp_path), files, secrets, Runner(), check_mode=True, want_diff=False)


def test_ansible_doc_shows_the_module_and_the_filter() -> None:
    module = ansible_doc("gateway_files")
    assert set(module["doc"]["options"]) == set(ARGUMENT_SPEC)
    assert "changed_paths" in module["return"]
    assert ansible_doc("gateway_files_args", "filter")["doc"]["options"]["part"]["choices"] == ["files", "secret_files"]
