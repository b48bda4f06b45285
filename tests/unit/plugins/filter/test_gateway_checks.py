"""The gateway's input checks (plugins/filter/gateway_checks.py): the lab's settings pass, each rule
names the setting it refuses and no other, no secret's value appears in a message; and ansible-doc
shows both filters."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gateway_checks", ROOT / "plugins/filter/gateway_checks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load()
SECRET = "pa55-word-never-shown"


def settings(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "webrtc_mode": "kamailio",
        "webrtc_dns": [{"dn": "1002", "password": SECRET}, {"dn": "1003", "password": "other"}],
        "webrtc_gateway_address": "127.0.0.54",
        "webrtc_asterisk_sip_address": "127.0.0.54",
        "webrtc_genesys_address": "127.0.0.81",
        "webrtc_genesys_failover_addresses": [],
        "webrtc_genesys_domain": "genesys.lab",
        "webrtc_genesys_port": 5060,
        "gateway_ports": [
            {"name": "webrtc_asterisk_sip_port", "value": "5060"},
            {"name": "webrtc_asterisk_ws_port", "value": "8088"},
            {"name": "webrtc_kamailio_ws_port", "value": "8080"},
            {"name": "webrtc_kamailio_sip_port", "value": "5070"},
            {"name": "webrtc_kamailio_rpc_port", "value": "5071"},
        ],
        "webrtc_dial_allow_regex": "^[0-9]{2,15}$",
        "webrtc_project_dir": "/opt/webrtc-gateway",
        "webrtc_forwarded_contact_prefix": "gw",
        "gateway_kamailio_log_batch_ms": 20,
        "gateway_poll_interval": 0.25,
        "webrtc_genesys_registrar": None,
        "webrtc_genesys_auth_enabled": False,
        "webrtc_genesys_auth_user": "",
        "webrtc_genesys_auth_password": "",
        "gateway_image_packages": ["asterisk", "kamailio"],
        "gateway_image_pins": {"asterisk": "1:22.1", "kamailio": "6.1.0"},
    }
    base.update(overrides)
    return base


def test_good_settings_break_no_rule() -> None:
    assert checks.gateway_input_problems(settings()) == []
    assert checks.gateway_input_problems(settings(webrtc_genesys_failover_addresses=["127.0.0.82"])) == []
    assert checks.gateway_input_problems(settings(webrtc_genesys_domain="10.1.2.3", gateway_poll_interval="1")) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"webrtc_mode": "both"}, ["webrtc_mode must be 'kamailio' or 'static' (got 'both')"]),
        ({"webrtc_dns": "1002"}, ["webrtc_dns must be a list of {dn, password} (got a str)"]),
        ({"webrtc_dns": {"dn": "1002"}}, ["webrtc_dns must be a list of {dn, password} (got a dict)"]),
        (
            {"webrtc_dns": []},
            ["webrtc_dns must list at least one DN (Asterisk authenticates every agent, in both modes)"],
        ),
        ({"webrtc_dns": ["1002"]}, ["webrtc_dns: item 1 must be a {dn, password} mapping"]),
        ({"webrtc_dns": [{"dn": "1", "password": "x"}]}, ["webrtc_dns: a DN must be 2-15 digits (got '1')"]),
        (
            {"webrtc_dns": [{"dn": "1002", "password": "x"}, {"dn": 1002, "password": "y"}]},
            ["webrtc_dns: DN 1002 is listed more than once"],
        ),
        (
            {"webrtc_dns": [{"dn": "1002", "password": 1234}]},
            ["webrtc_dns: the password of DN 1002 must be a non-empty string (quote it in YAML)"],
        ),
        (
            {"webrtc_gateway_address": "gw.example"},
            ["webrtc_gateway_address must be an IPv4 address (got 'gw.example')"],
        ),
        (
            {"webrtc_asterisk_sip_address": "256.1.1.1"},
            ["webrtc_asterisk_sip_address must be an IPv4 address (got '256.1.1.1')"],
        ),
        (
            {"webrtc_genesys_address": "sip.genesys"},
            [
                "webrtc_genesys_address must be an IPv4 address (got 'sip.genesys'); Genesys is given by address, "
                "not by host name (README, Running it against a real gateway)"
            ],
        ),
        (
            {"webrtc_genesys_failover_addresses": ["b"]},
            ["webrtc_genesys_failover_addresses: each must be an IPv4 address (got 'b')"],
        ),
        (
            {"webrtc_genesys_failover_addresses": ["127.0.0.81"]},
            [
                "webrtc_genesys_failover_addresses must not repeat an address nor hold webrtc_genesys_address "
                "(got 127.0.0.81)"
            ],
        ),
        (
            {"webrtc_genesys_failover_addresses": [f"10.0.0.{i}" for i in range(9)]},
            ["webrtc_genesys_failover_addresses holds at most 8 addresses"],
        ),
        (
            {"webrtc_genesys_domain": "genesys_lab"},
            [
                "webrtc_genesys_domain must be a host name (letters, digits, '-' and '.') or an IPv4 address "
                "(got 'genesys_lab')"
            ],
        ),
        ({"webrtc_genesys_port": "sip"}, ["webrtc_genesys_port must be an integer 1-65535 (got 'sip')"]),
        ({"webrtc_genesys_port": 0}, ["webrtc_genesys_port must be an integer 1-65535 (got '0')"]),
        (
            {"webrtc_dial_allow_regex": "[0-9]+"},
            [
                "webrtc_dial_allow_regex must be an anchored regular expression (^...$) made of digits, letters and "
                "[]{}()|,.?*+#- only: it goes into Kamailio's and Asterisk's configs as is (got '[0-9]+')"
            ],
        ),
        ({"webrtc_project_dir": "opt/gw"}, ["webrtc_project_dir must be an absolute path (got 'opt/gw')"]),
        (
            {"webrtc_forwarded_contact_prefix": "nx"},
            [
                "webrtc_forwarded_contact_prefix must be 1-8 letters other than n, x and z (Asterisk's dialplan "
                "patterns give those a meaning) (got 'nx')"
            ],
        ),
        ({"gateway_kamailio_log_batch_ms": 0}, ["gateway_kamailio_log_batch_ms must be an integer 1-1000 (got '0')"]),
        ({"gateway_poll_interval": "fast"}, ["gateway_poll_interval must be a number of seconds 0.05-5 (got 'fast')"]),
        ({"gateway_poll_interval": 6}, ["gateway_poll_interval must be a number of seconds 0.05-5 (got '6')"]),
        (
            {"webrtc_genesys_registrar": "single"},
            [
                "webrtc_genesys_registrar is gone: the switch reads how Genesys treats contacts from Genesys's own "
                "answers; remove it from the inventory (got 'single')"
            ],
        ),
        (
            {"webrtc_genesys_auth_enabled": True, "webrtc_genesys_auth_user": "gw"},
            ["webrtc_genesys_auth_password is required when webrtc_genesys_auth_enabled is true"],
        ),
        (
            {"gateway_image_pins": {"asterisk": "1:22.1"}},
            [
                "gateway_image_pins has no version for kamailio (of gateway_image_packages): pin each package the "
                "image installs (make image-pins)"
            ],
        ),
    ],
)
def test_each_rule_names_its_setting_and_only_it(overrides: dict[str, Any], expected: list[str]) -> None:
    assert checks.gateway_input_problems(settings(**overrides)) == expected


def test_a_port_clash_names_both_listeners_and_no_address_rule() -> None:
    ports = settings()["gateway_ports"]
    ports[2] = {"name": "webrtc_kamailio_ws_port", "value": 5060}  # an int against the string "5060"
    assert checks.gateway_input_problems(settings(gateway_ports=ports)) == [
        "webrtc_asterisk_sip_port (5060) clashes with webrtc_kamailio_ws_port: each of the gateway's listeners "
        "needs its own port",
        "webrtc_kamailio_ws_port (5060) clashes with webrtc_asterisk_sip_port: each of the gateway's listeners "
        "needs its own port",
    ]


def test_no_message_holds_a_password() -> None:
    broken = settings(webrtc_dns=[{"dn": "1", "password": SECRET}, {"dn": "1", "password": SECRET}])
    problems = checks.gateway_input_problems(broken)
    assert problems and not any(SECRET in problem for problem in problems)


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        (
            {"webrtc_dns": [{"dn": "1002", "password": "a\nb\tc"}]},
            ["webrtc_dns: the password of DN 1002 contains a line break and a tab"],
        ),
        (
            {"webrtc_dns": [{"dn": "1002", "password": "a\x01"}]},
            ["webrtc_dns: the password of DN 1002 contains another control character"],
        ),
        ({"asterisk_ami_secret": " x"}, ["asterisk_ami_secret starts or ends with a space"]),
        ({"asterisk_ami_secret": ">x"}, ['asterisk_ami_secret starts with ">" (Asterisk would read "=>")']),
        ({"webrtc_genesys_auth_password": 'a"b'}, ["webrtc_genesys_auth_password contains a double quote ('\"')"]),
        ({"webrtc_genesys_auth_user": "a\\b"}, ["webrtc_genesys_auth_user contains a backslash"]),
        ({"webrtc_dns": [{"dn": "1002", "password": 'a"b\\c;d'}]}, []),  # Asterisk's files take these
    ],
)
def test_secret_problems_name_the_setting_and_the_kind_never_the_value(
    secrets: dict[str, Any], expected: list[str]
) -> None:
    problems = checks.gateway_secret_problems(secrets)
    assert problems == expected


def test_ansible_doc_shows_both_filters() -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    for name in ("gateway_input_problems", "gateway_secret_problems"):
        result = subprocess.run(
            [str(ROOT / ".venv/bin/ansible-doc"), "-t", "filter", "--json", f"gcti.webrtc_genesys.{name}"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert f'"name": "{name}"' in result.stdout and '"_value"' in result.stdout
