"""The rendered configs judged by nginx, Kamailio and Asterisk themselves, in throwaway containers.

All checks start at once on first use (one container each, ``--network none``) and every test
waits for its own result: the whole set takes about as long as its slowest container.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lab.daemons import (
    AsteriskResult,
    KamailioResult,
    NginxResult,
    asterisk_check,
    asterisk_config_dir,
    kamailio_check,
    nginx_test,
)
from lab.logs import error_lines
from lab.rendering import MODES, ROLES, lab_variables, render, render_lab

pytestmark = pytest.mark.daemon

RESULT_TIMEOUT = 180.0
NGINX_CONTAINER_DIR = "/etc/webrtc/nginx"


@dataclass(frozen=True)
class KamailioCase:
    """One Kamailio config to check: a template rendered with overrides of the lab inventory."""

    id: str
    role: str
    template: str
    mode: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def render(self) -> str:
        return render_lab(self.role, self.template, self.mode, **dict(self.overrides))

    def includes(self) -> dict[str, str]:
        """The files the config includes, rendered alike (the proxy's Genesys credentials)."""
        if self.role != "kamailio":
            return {}
        return {"genesys-auth.cfg": render_lab(self.role, "genesys-auth.cfg.j2", self.mode, **dict(self.overrides))}


KAMAILIO_CASES = (
    KamailioCase("proxy-kamailio", "kamailio", "kamailio-proxy.cfg.j2", "kamailio"),
    KamailioCase("proxy-static", "kamailio", "kamailio-proxy.cfg.j2", "static"),
    KamailioCase(
        "proxy-kamailio-genesys-auth",
        "kamailio",
        "kamailio-proxy.cfg.j2",
        "kamailio",
        (("webrtc_genesys_auth_enabled", True),),
    ),
    KamailioCase(
        "proxy-kamailio-two-genesys-failovers",
        "kamailio",
        "kamailio-proxy.cfg.j2",
        "kamailio",
        (("webrtc_genesys_failover_addresses", ("127.0.0.82", "127.0.0.83")),),
    ),
    KamailioCase(
        "proxy-quiet-no-pike",
        "kamailio",
        "kamailio-proxy.cfg.j2",
        "kamailio",
        (("kamailio_log_sequence", False), ("kamailio_pike_enabled", False)),
    ),
    *(
        KamailioCase(
            f"standin-{contacts}-{matching}{'-auth' if auth else ''}",
            "lab_genesys",
            "genesys-standin.cfg.j2",
            "kamailio",
            (
                ("lab_genesys_contacts", contacts),
                ("lab_genesys_contact_matching", matching),
                ("lab_genesys_min_expires", 30),
                ("lab_genesys_auth_enabled", auth),
                ("lab_genesys_auth_password", "lab-genesys-secret"),
            ),
        )
        for contacts, matching in (("several", "rfc3261"), ("several", "string"), ("replace", "rfc3261"))
        for auth in (False, True)
    ),
)


@dataclass
class DaemonRuns:
    nginx: dict[str, Future[NginxResult]] = field(default_factory=dict)
    kamailio: dict[str, Future[KamailioResult]] = field(default_factory=dict)
    asterisk: dict[str, Future[AsteriskResult]] = field(default_factory=dict)
    asterisk_dirs: dict[str, Path] = field(default_factory=dict)


def _asterisk_rendered(mode: str, **overrides: Any) -> dict[str, str]:
    templates = sorted((ROLES / "asterisk" / "templates").glob("*.j2"))
    variables = lab_variables(mode, **overrides)
    return {path.name.removesuffix(".j2"): render(path, variables) for path in templates}


# Secrets with the characters Asterisk's config syntax gives a meaning (";" starts a comment,
# "\;" is a literal ";"): the role writes them so that Asterisk reads them back as they are.
ENCODED_PASSWORD = 'p"q;r\\;s#[x]=>y'
ENCODED_DNS = [{"dn": "1002", "password": ENCODED_PASSWORD}, {"dn": "1003", "password": "lab-1003-secret"}]
ENCODED_AMI_SECRET = "ami;secret;1"


def _nginx(config: str, mode: str, workdir: Path) -> NginxResult:
    variables = lab_variables(mode)
    return nginx_test(
        config,
        workdir,
        container_dir=NGINX_CONTAINER_DIR,
        tls_dir=str(variables["nginx_container_tls_dir"]),
        certificate=Path(str(variables["nginx_tls_certificate"])).name,
        key=Path(str(variables["nginx_tls_certificate_key"])).name,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonRuns]:
    """Every daemon check of this module, started in parallel."""
    # Rendering happens here, in this thread: a template error fails the tests, not a worker.
    nginx_configs = {mode: render_lab("nginx", "nginx.conf.j2", mode) for mode in MODES}
    kamailio_configs = {case.id: (case.render(), case.includes()) for case in KAMAILIO_CASES}
    asterisk_dirs = {
        mode: asterisk_config_dir(_asterisk_rendered(mode), tmp_path_factory.mktemp(f"asterisk-{mode}"))
        for mode in MODES
    }
    encoded_dir = asterisk_config_dir(
        _asterisk_rendered("static", webrtc_dns=ENCODED_DNS, asterisk_ami_secret=ENCODED_AMI_SECRET),
        tmp_path_factory.mktemp("asterisk-encoded"),
    )
    result = DaemonRuns()
    with ThreadPoolExecutor(max_workers=6, thread_name_prefix="daemon-check") as pool:
        # The slowest first: Asterisk boots, Kamailio runs for a fixed while, nginx -t is quick.
        for mode, config_dir in asterisk_dirs.items():
            result.asterisk[mode] = pool.submit(asterisk_check, config_dir, mode)
        result.asterisk_dirs["encoded"] = encoded_dir
        result.asterisk["encoded"] = pool.submit(
            asterisk_check, encoded_dir, "encoded", ("pjsip show auth 1002-auth", "manager show user monitor")
        )
        for case_id, (config, includes) in kamailio_configs.items():
            result.kamailio[case_id] = pool.submit(
                kamailio_check, config, tmp_path_factory.mktemp(f"kamailio-{case_id}"), includes
            )
        for mode, config in nginx_configs.items():
            result.nginx[mode] = pool.submit(_nginx, config, mode, tmp_path_factory.mktemp(f"nginx-{mode}"))
        yield result


def _report(title: str, text: str) -> str:
    return f"\n--- {title} ---\n{text.strip()}"


# --------------------------------------------------------------------------- nginx


@pytest.mark.parametrize("mode", MODES)
def test_nginx_accepts_the_config(runs: DaemonRuns, mode: str) -> None:
    result = runs.nginx[mode].result(timeout=RESULT_TIMEOUT)
    assert result.returncode == 0, _report("nginx -t", result.output)
    assert "test is successful" in result.output
    problems = [line for line in result.output.splitlines() if re.search(r"\[(warn|error|crit|alert|emerg)\]", line)]
    assert problems == [], _report("nginx -t", result.output)


# --------------------------------------------------------------------------- Kamailio


@pytest.mark.parametrize("case", KAMAILIO_CASES, ids=lambda case: case.id)
def test_kamailio_parses_the_config(runs: DaemonRuns, case: KamailioCase) -> None:
    result = runs.kamailio[case.id].result(timeout=RESULT_TIMEOUT)
    assert result.parse_returncode == 0, _report("kamailio -c", result.parse_output)
    assert "config file ok" in result.parse_output.lower()
    assert error_lines(result.parse_output) == []


@pytest.mark.parametrize("case", KAMAILIO_CASES, ids=lambda case: case.id)
def test_kamailio_starts_without_errors(runs: DaemonRuns, case: KamailioCase) -> None:
    """Fixups (regexes, transformations, module parameters) only run when Kamailio really starts."""
    result = runs.kamailio[case.id].result(timeout=RESULT_TIMEOUT)
    assert result.alive, _report("kamailio run (exited early)", result.run_output)
    assert error_lines(result.run_output) == [], _report("kamailio run", result.run_output)
    expected = (
        {"udp: 127.0.0.54 [127.0.0.54]:5070", "tcp: 127.0.0.54 [127.0.0.54]:8080"}
        if case.role == "kamailio"
        else {"udp: 127.0.0.81 [127.0.0.81]:5060", "tcp: 127.0.0.81 [127.0.0.81]:8081"}
    )
    listening = {line.strip() for line in result.run_output.splitlines()}
    assert expected <= listening, _report("kamailio run", result.run_output)


# --------------------------------------------------------------------------- Asterisk


@pytest.mark.parametrize("mode", MODES)
def test_asterisk_boots_without_errors(runs: DaemonRuns, mode: str) -> None:
    result = runs.asterisk[mode].result(timeout=RESULT_TIMEOUT)
    assert result.booted, _report("asterisk did not fully boot", result.boot_log)
    assert error_lines(result.boot_log) == [], _report("asterisk boot log", result.boot_log)


@pytest.mark.parametrize("mode", MODES)
def test_asterisk_has_an_endpoint_per_dn_and_one_for_genesys(runs: DaemonRuns, mode: str) -> None:
    result = runs.asterisk[mode].result(timeout=RESULT_TIMEOUT)
    assert result.booted, _report("asterisk did not fully boot", result.boot_log)
    endpoints = set(re.findall(r"(?m)^\s*Endpoint:\s+([^<\s/]+)", result.endpoints))
    assert endpoints == {"1002", "1003", "genesys"}, _report("pjsip show endpoints", result.endpoints)
    identify = re.search(r"Identify:\s+genesys-identify/genesys\s+Match:\s+(\S+)", result.endpoints)
    assert identify and identify.group(1) == "127.0.0.81/32", _report("Genesys identified by", result.endpoints)


def test_asterisk_static_mode_loads_a_registration_per_dn(runs: DaemonRuns) -> None:
    result = runs.asterisk["static"].result(timeout=RESULT_TIMEOUT)
    assert result.booted, _report("asterisk did not fully boot", result.boot_log)
    registrations = set(re.findall(r"(?m)^\s*(genesys-reg-\S+)/sip:", result.registrations))
    assert registrations == {"genesys-reg-1002", "genesys-reg-1003"}, _report(
        "pjsip show registrations", result.registrations
    )
    assert "Objects found: 2" in result.registrations


def test_asterisk_kamailio_mode_loads_no_registrations(runs: DaemonRuns) -> None:
    result = runs.asterisk["kamailio"].result(timeout=RESULT_TIMEOUT)
    assert result.booted, _report("asterisk did not fully boot", result.boot_log)
    assert "No objects found." in result.registrations, _report("pjsip show registrations", result.registrations)


def test_asterisk_reads_secrets_with_its_syntax_characters_back_as_they_are(runs: DaemonRuns) -> None:
    result = runs.asterisk["encoded"].result(timeout=RESULT_TIMEOUT)
    assert result.booted, _report("asterisk did not fully boot", result.boot_log)
    assert error_lines(result.boot_log) == [], _report("asterisk boot log", result.boot_log)
    auth = result.outputs["pjsip show auth 1002-auth"]
    password = re.search(r"^\s*password\s*:\s*(.*?)\s*$", auth, re.MULTILINE)
    assert password and password.group(1) == ENCODED_PASSWORD, _report("pjsip show auth 1002-auth", auth)
    # Asterisk shows an AMI secret only as "<Set>": the user must have loaded, with one.
    user = result.outputs["manager show user monitor"]
    assert re.search(r"^\s*secret:\s*<Set>\s*$", user, re.MULTILINE), _report("manager show user monitor", user)
    manager = (runs.asterisk_dirs["encoded"] / "manager_secrets.conf").read_text()
    assert "secret=ami\\;secret\\;1\n" in manager, "the AMI secret's ';' must be written as '\\;'"
