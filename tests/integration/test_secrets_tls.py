"""Secrets never appear in output or logs and are not world-readable; nginx speaks TLS 1.2+ only."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from lab import (
    DN_PASSWORDS,
    GATEWAY,
    LAB_VARS,
    PROJECT,
    STANDIN_PROJECT,
    WHOLE_HISTORY,
    compose,
    run_playbook,
    service_log,
)

SECRETS = {
    "genesys password": "lab-genesys-secret-for-vvv",
    "ami secret": LAB_VARS["asterisk_ami_secret"],
    **{f"DN {dn} password": pw for dn, pw in DN_PASSWORDS.items()},
}
AUTH = {"webrtc_genesys_auth_enabled": True, "webrtc_genesys_auth_password": SECRETS["genesys password"]}
SECRET_FILES = [
    "asterisk/etc/pjsip.conf",
    "asterisk/etc/manager.conf",
    "asterisk/etc/pjsip_secrets.conf",
    "asterisk/etc/manager_secrets.conf",
    "kamailio/kamailio-proxy.cfg",
    "kamailio/genesys-auth.cfg",
    "registration-monitor/etc/monitor.json",
    f"nginx/tls/{Path(LAB_VARS['nginx_tls_certificate_key']).name}",
]


@pytest.fixture(scope="module")
def verbose_runs() -> dict[str, str]:
    """Both playbooks with -vvv, Genesys auth on (so every kind of secret is in use)."""
    lab = run_playbook("lab.yml", AUTH)
    assert lab.returncode == 0, lab.stdout[-2000:]
    outputs = {}
    for playbook in ("rollback.yml", "revert.yml"):
        result = run_playbook(playbook, AUTH, "-vvv")
        assert result.returncode == 0, result.stdout[-3000:]
        outputs[playbook] = result.stdout + result.stderr
    yield outputs
    assert run_playbook("lab.yml", {"webrtc_genesys_auth_enabled": False}).returncode == 0
    assert run_playbook("revert.yml").returncode == 0


def test_no_secret_in_vvv_playbook_output(verbose_runs: dict[str, str]) -> None:
    leaks = {
        (playbook, name)
        for playbook, text in verbose_runs.items()
        for name, secret in SECRETS.items()
        if secret in text
    }
    assert leaks == set()


def test_no_secret_in_any_daemon_log(verbose_runs: dict[str, str]) -> None:
    logs = {
        service: service_log(service, since=WHOLE_HISTORY)
        for service in ("nginx", "kamailio", "asterisk", "registration-monitor")
    }
    logs["genesys-standin"] = compose("logs", "--no-log-prefix", "--no-color", project=STANDIN_PROJECT)
    logs["asterisk messages.log"] = (PROJECT / "asterisk/log/messages.log").read_text(errors="replace")
    leaks = {(where, name) for where, text in logs.items() for name, secret in SECRETS.items() if secret in text}
    assert leaks == set()


def test_files_holding_secrets_are_0640_or_tighter(verbose_runs: dict[str, str]) -> None:
    for relative in SECRET_FILES:
        mode = stat.S_IMODE((PROJECT / relative).stat().st_mode)
        assert mode & 0o137 == 0, f"{relative} is {oct(mode)}"


def _handshake(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"{GATEWAY}:8443", "-servername", "lab-gateway", *flags],
        input="",
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_tls_10_and_11_are_refused(version: str) -> None:
    # SECLEVEL=0 lets the client offer the old protocol at all: the refusal must be the server's.
    result = _handshake(version, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert result.returncode != 0
    assert "Cipher is (NONE)" in result.stdout or "alert protocol version" in result.stderr + result.stdout


@pytest.mark.parametrize(("version", "name"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls_12_and_13_are_accepted(version: str, name: str) -> None:
    result = _handshake(version)
    assert result.returncode == 0, result.stderr[-500:]
    assert f"Protocol  : {name}" in result.stdout or f"New, {name}" in result.stdout
