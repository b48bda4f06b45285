"""The roles' templates rendered with Ansible's Templar for the lab inventory, in both modes, read as text."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab.rendering import MODES, ROLES, ROOT, all_templates, evaluate, lab_variables, render, render_lab

from .configs import (
    asterisk_sections,
    kamailio_defines,
    kamailio_listens,
    nginx_block,
    nginx_directives,
    nginx_strip_comments,
    sections_of_type,
)

# The lab inventory (inventories/lab/group_vars/gateways.yml) these expectations are written for.
GATEWAY = "127.0.0.54"
GENESYS = "127.0.0.81"
LAB_DNS = ("1002", "1003")
GENESYS_USER = "gateway"
GENESYS_PASSWORD = "lab-genesys-secret"
WS_UPSTREAM = {"kamailio": f"{GATEWAY}:8080", "static": f"{GATEWAY}:8088"}

KAMAILIO_SEQUENCE_LOGS = (
    "Initial REGISTER - forwarding to Asterisk for auth challenge",
    "Authenticated REGISTER - validating with Asterisk then forwarding to Genesys",
    "Asterisk accepted REGISTER - now forwarding to Genesys",
    "Sending REGISTER to Genesys for DN",
)

modes = pytest.mark.parametrize("mode", MODES)


def _relative(template: Path) -> str:
    return str(template.relative_to(ROOT))


def test_lab_inventory_is_what_the_expectations_assume() -> None:
    variables = lab_variables("static")
    assert variables["webrtc_gateway_address"] == GATEWAY
    assert variables["webrtc_genesys_address"] == GENESYS
    assert tuple(dn["dn"] for dn in variables["webrtc_dns"]) == LAB_DNS
    assert variables["webrtc_genesys_auth_password"] == GENESYS_PASSWORD


# --------------------------------------------------------------------------- every template


@modes
@pytest.mark.parametrize("template", all_templates(), ids=_relative)
def test_template_renders_without_private_lan_addresses(template: Path, mode: str) -> None:
    text = render(template, lab_variables(mode))
    assert text.strip(), f"{_relative(template)} rendered empty"
    # A variable that was not trusted as a template would stay unrendered, e.g. "{{ webrtc_gateway_address }}".
    assert not re.search(r"\{\{\s*[A-Za-z_]|\{%", text)
    assert "192.168." not in text


def test_one_template_per_config_for_both_modes() -> None:
    """The mode is a variable of each template, never a second copy of a template."""
    mode_named = [
        _relative(path)
        for path in sorted(ROLES.glob("*/templates/**/*"))
        if path.is_file()
        and re.search(r"static|kamailio", path.name, re.IGNORECASE)
        and path != ROLES / "kamailio" / "templates" / "kamailio-proxy.cfg.j2"
    ]
    assert mode_named == []


def test_asterisk_render_entry_point_lists_every_template_once() -> None:
    """render.yml (the switch's quick check), main.yml's install and the backup share one list:
    none is left out, and each names a mode and the handler topic a change of it needs."""
    variables = lab_variables("static")
    listed = evaluate("{{ _asterisk_templates }}", variables)
    handlers = yaml.safe_load((ROLES / "asterisk" / "handlers" / "main.yml").read_text())
    topics = {h["listen"] for h in handlers}
    templates = sorted(path.name.removesuffix(".j2") for path in (ROLES / "asterisk" / "templates").glob("*.j2"))
    assert sorted(listed) == templates
    for name, spec in listed.items():
        assert spec["mode"] in ("0644", "0640"), name
        assert spec["notify"] in topics, name
    assert {n for n, s in listed.items() if s.get("secret")} == {"manager_secrets.conf", "pjsip_secrets.conf"}


@modes
def test_monitor_config_is_json_of_the_mode(mode: str) -> None:
    config: dict[str, Any] = json.loads(render_lab("registration_monitor", "monitor.json.j2", mode))
    assert config["mode"] == mode
    assert config["dns"] == list(LAB_DNS)
    assert config["kamailio_rpc_url"] == f"http://{GATEWAY}:5071/RPC"
    assert isinstance(config["ami_port"], int)


@modes
@pytest.mark.parametrize("template", ["docker-compose.yml.j2", "Dockerfile.j2"])
def test_gateway_templates_need_no_other_role(template: str, mode: str) -> None:
    """lab.yml loads the gateway role alone and renders its compose file: no other role's
    variable may appear in the gateway role's templates."""
    render(ROLES / "gateway" / "templates" / template, lab_variables(mode, only_roles=("gateway",)))


@modes
@pytest.mark.parametrize("role", ["gateway", "lab_genesys"])
def test_compose_files_are_yaml(role: str, mode: str) -> None:
    compose = yaml.safe_load(render_lab(role, "docker-compose.yml.j2", mode))
    assert compose["services"]
    for service in compose["services"].values():
        assert service["network_mode"] == "host"
    if role == "gateway":  # docker compose ps shows the monitor unhealthy when /healthz fails
        probe = compose["services"]["registration-monitor"]["healthcheck"]["test"]
        assert probe[:3] == ["CMD", "python3", "-c"] and "/healthz" in probe[-1], probe
        assert "/etc/webrtc/registration-monitor/monitor.json" in probe[-1]  # the monitor's own address
        compile(probe[-1], "healthcheck", "exec")  # valid Python


# --------------------------------------------------------------------------- nginx


@modes
def test_nginx_ws_location_proxies_to_the_mode_upstream(mode: str) -> None:
    text = render_lab("nginx", "nginx.conf.j2", mode)
    location = nginx_block(text, "location /ws")
    assert nginx_directives(location, "proxy_pass") == ["http://sip_websocket"]
    upstream = nginx_block(text, "upstream sip_websocket")
    assert nginx_directives(upstream, "server") == [WS_UPSTREAM[mode]]


@modes
def test_nginx_ws_location_upgrades_to_websocket(mode: str) -> None:
    text = render_lab("nginx", "nginx.conf.j2", mode)
    location = nginx_block(text, "location /ws")
    assert nginx_directives(location, "proxy_http_version") == ["1.1"]
    headers = nginx_directives(location, "proxy_set_header")
    assert "Upgrade $http_upgrade" in headers
    assert "Connection $connection_upgrade" in headers
    upgrade_map = nginx_block(text, "map $http_upgrade $connection_upgrade")
    assert re.search(r"(?m)^\s*default\s+upgrade;", upgrade_map)
    assert re.search(r"(?m)^\s*''\s+close;", upgrade_map)


@modes
def test_nginx_speaks_only_tls_1_2_and_1_3(mode: str) -> None:
    text = nginx_strip_comments(render_lab("nginx", "nginx.conf.j2", mode))
    assert nginx_directives(text, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    assert set(re.findall(r"\b(?:SSLv[\d.]+|TLSv[\d.]+)", text)) == {"TLSv1.2", "TLSv1.3"}
    server = nginx_block(text, "server")
    assert nginx_directives(server, "listen") == [f"{GATEWAY}:8443 ssl"]
    assert nginx_directives(server, "ssl_certificate") == ["/etc/webrtc/nginx/tls/lab-gateway.crt"]
    assert nginx_directives(server, "ssl_certificate_key") == ["/etc/webrtc/nginx/tls/lab-gateway.key"]


# --------------------------------------------------------------------------- Asterisk PJSIP


def _pjsip(mode: str, **overrides: Any) -> str:
    """pjsip.conf as Asterisk reads it: with its #include of the credentials in place."""
    text = render_lab("asterisk", "pjsip.conf.j2", mode, **overrides)
    secrets = render_lab("asterisk", "pjsip_secrets.conf.j2", mode, **overrides)
    assert text.count("#include pjsip_secrets.conf\n") == 1
    return text.replace("#include pjsip_secrets.conf\n", secrets)


@modes
def test_pjsip_conf_and_manager_conf_hold_no_secret(mode: str) -> None:
    """The secrets are in the include files only, so --check --diff can show the main files."""
    overrides = {"webrtc_genesys_auth_enabled": True, "webrtc_genesys_auth_password": "gen-pass-x"}
    variables = lab_variables(mode, **overrides)
    secrets = [dn["password"] for dn in variables["webrtc_dns"]] + ["gen-pass-x", str(variables["asterisk_ami_secret"])]
    for name in ("pjsip.conf.j2", "manager.conf.j2"):
        text = render_lab("asterisk", name, mode, **overrides)
        assert not [secret for secret in secrets if secret in text], name
        assert not re.search(r"^(password|secret)=", text, re.MULTILINE), name


def test_static_mode_registers_every_dn_once() -> None:
    registrations = sections_of_type(_pjsip("static"), "registration")
    by_dn: dict[str, int] = {}
    for registration in registrations:
        dn = registration.get("contact_user") or ""
        by_dn[dn] = by_dn.get(dn, 0) + 1
    assert by_dn == dict.fromkeys(LAB_DNS, 1)
    for registration in registrations:
        dn = registration.get("contact_user")
        assert registration.values("type") == ["registration"]
        # Genesys's INVITE to the ;line= contact lands on the plain-RTP Genesys endpoint.
        assert registration.get("endpoint") == "genesys", registration.name
        assert registration.get("expiration") == "600", registration.name
        assert registration.get("retry_interval") == "10", registration.name
        assert registration.get("line") == "yes", registration.name
        assert registration.get("contact_user") == dn, registration.name
        assert registration.get("server_uri") == f"sip:{GENESYS}:5060", registration.name
        assert registration.get("client_uri") == f"sip:{dn}@{GENESYS}", registration.name
        assert registration.get("outbound_auth") is None, registration.name


def test_static_mode_with_genesys_auth_authenticates_every_registration() -> None:
    text = _pjsip("static", webrtc_genesys_auth_enabled=True)
    auths = {section.name: section for section in sections_of_type(text, "auth")}
    registrations = sections_of_type(text, "registration")
    assert len(registrations) == len(LAB_DNS)
    for registration in registrations:
        outbound_auth = registration.get("outbound_auth")
        assert outbound_auth in auths, registration.name
        assert auths[outbound_auth].get("password") == GENESYS_PASSWORD


@pytest.mark.parametrize("genesys_auth", [False, True], ids=["no-genesys-auth", "genesys-auth"])
def test_kamailio_mode_has_no_registrations(genesys_auth: bool) -> None:
    text = _pjsip("kamailio", webrtc_genesys_auth_enabled=genesys_auth)
    assert [line for line in text.splitlines() if line.strip() == "type=registration"] == []
    assert "expiration=0" not in text
    assert sections_of_type(text, "registration") == []
    # The Genesys credentials serve calls only (the Genesys endpoint's outbound_auth).
    assert (GENESYS_PASSWORD in text) == genesys_auth


@modes
def test_one_endpoint_auth_and_aor_per_dn(mode: str) -> None:
    sections = asterisk_sections(_pjsip(mode))
    names = {kind: sorted(s.name for s in sections if s.type == kind) for kind in ("endpoint", "auth", "aor")}
    assert names == {
        "endpoint": sorted([*LAB_DNS, "genesys"]),
        "auth": sorted(f"{dn}-auth" for dn in LAB_DNS),
        "aor": sorted([*LAB_DNS, "genesys"]),
    }
    endpoints = {section.name: section for section in sections if section.type == "endpoint"}
    auths = {section.name: section for section in sections if section.type == "auth"}
    for dn in LAB_DNS:
        assert endpoints[dn].get("auth") == f"{dn}-auth"
        assert endpoints[dn].get("aors") == dn
        assert auths[f"{dn}-auth"].get("username") == dn
        assert auths[f"{dn}-auth"].get("password") == f"lab-{dn}-secret"


@modes
def test_aors_support_path_and_endpoints_do_not(mode: str) -> None:
    sections = asterisk_sections(_pjsip(mode))
    aors = [section for section in sections if section.type == "aor" and section.name in LAB_DNS]
    endpoints = [section for section in sections if section.type == "endpoint"]
    assert aors
    assert endpoints
    for aor in aors:
        assert aor.values("support_path") == ["yes"], aor.name
    for endpoint in endpoints:
        assert endpoint.values("support_path") == [], endpoint.name


@modes
def test_asterisk_transports_bind_the_gateway(mode: str) -> None:
    transports = {section.name: section for section in sections_of_type(_pjsip(mode), "transport")}
    assert transports["transport-udp"].get("bind") == f"{GATEWAY}:5060"
    assert transports["transport-ws"].get("bind") == f"{GATEWAY}:8088"


# --------------------------------------------------------------------------- Kamailio proxy


def _proxy(mode: str, **overrides: Any) -> str:
    return render_lab("kamailio", "kamailio-proxy.cfg.j2", mode, **overrides)


@modes
def test_kamailio_listens_on_the_gateway(mode: str) -> None:
    listens = kamailio_listens(_proxy(mode))
    assert f"tcp:{GATEWAY}:8080" in listens
    assert f"udp:{GATEWAY}:5070" in listens


@modes
def test_kamailio_mirrors_with_uac_and_logs_the_seed_sequence(mode: str) -> None:
    text = _proxy(mode)
    assert "uac_req_send()" in text
    for message in KAMAILIO_SEQUENCE_LOGS:
        assert message in text


@modes
def test_kamailio_genesys_password_only_in_its_include_file(mode: str) -> None:
    """kamailio-proxy.cfg holds no secret (so --check --diff shows it); it includes
    genesys-auth.cfg, whose one line with the password is its #!define."""
    text = _proxy(mode, webrtc_genesys_auth_enabled=True)
    secrets = render_lab("kamailio", "genesys-auth.cfg.j2", mode, webrtc_genesys_auth_enabled=True)
    assert GENESYS_PASSWORD not in text
    assert 'include_file "genesys-auth.cfg"' in text
    assert [line for line in secrets.splitlines() if GENESYS_PASSWORD in line] == [
        f'#!define GENESYS_AUTH_PASSWORD "{GENESYS_PASSWORD}"'
    ]
    assert kamailio_defines(secrets)["GENESYS_AUTH_PASSWORD"] == f'"{GENESYS_PASSWORD}"'
    assert "WITH_GENESYS_AUTH" in kamailio_defines(text)
    logged = [line for line in text.splitlines() if "xlog(" in line and "GENESYS_AUTH_PASSWORD" in line]
    assert logged == []


@modes
def test_kamailio_without_genesys_auth_holds_no_password(mode: str) -> None:
    text = _proxy(mode)
    assert GENESYS_PASSWORD not in text
    assert "WITH_GENESYS_AUTH" not in kamailio_defines(text)


# --------------------------------------------------------------------------- lab Genesys stand-in


@pytest.mark.parametrize(
    ("contacts", "matching", "define"),
    [
        ("several", "rfc3261", "WITH_RFC3261_MATCHING"),
        ("several", "string", None),
        ("replace", "rfc3261", "WITH_REPLACE"),
    ],
)
@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "auth"])
def test_standin_defines_follow_its_own_settings(contacts: str, matching: str, define: str | None, auth: bool) -> None:
    text = render_lab(
        "lab_genesys",
        "genesys-standin.cfg.j2",
        "kamailio",
        lab_genesys_contacts=contacts,
        lab_genesys_contact_matching=matching,
        lab_genesys_max_expires=45,
        lab_genesys_min_expires=30,
        lab_genesys_state="silent",
        lab_genesys_auth_enabled=auth,
        lab_genesys_auth_user=GENESYS_USER,
        lab_genesys_auth_password=GENESYS_PASSWORD,
    )
    defines = kamailio_defines(text)
    assert {d for d in ("WITH_RFC3261_MATCHING", "WITH_REPLACE") if d in defines} == ({define} if define else set())
    assert ("WITH_AUTH" in defines) == auth
    assert defines["MAX_EXPIRES"] == "45" and defines["MIN_EXPIRES"] == "30" and defines["START_STATE"] == "1"
    assert "Min-Expires: 30\\r\\n" in text
    # The password only as its digest HA1, whatever characters it holds.
    assert GENESYS_PASSWORD not in text
    ha1 = hashlib.md5(f"{GENESYS_USER}:genesys-standin.lab:{GENESYS_PASSWORD}".encode()).hexdigest()
    assert (defines.get("AUTH_HA1") == f'"{ha1}"') == auth
    assert kamailio_listens(text) == {f"udp:{GENESYS}:5060", f"tcp:{GENESYS}:8081"}


def test_standin_defaults_are_its_own() -> None:
    """No default of the stand-in is read from the gateway's settings: a test can make them disagree."""
    defaults = (ROLES / "lab_genesys" / "defaults" / "main.yml").read_text()
    assert "webrtc_" not in defaults
    spec = (ROLES / "lab_genesys" / "meta" / "argument_specs.yml").read_text()
    assert "{{" not in spec


def test_ami_user_reads_call_events() -> None:
    """The monitor counts calls from AMI call events, which Asterisk sends only with read=call."""
    text = render_lab("asterisk", "manager.conf.j2", "kamailio")
    read = next(line for line in text.splitlines() if line.startswith("read="))
    assert "call" in read.removeprefix("read=").split(","), read


@modes
def test_agents_endpoints_are_webrtc_with_the_roles_dtls_certificate(mode: str) -> None:
    endpoints = {s.name: s for s in sections_of_type(_pjsip(mode), "endpoint")}
    for dn in LAB_DNS:
        endpoint = endpoints[dn]
        assert endpoint.get("webrtc") == "yes", dn
        assert endpoint.get("dtls_cert_file") == "/etc/asterisk/keys/dtls.crt", dn
        assert endpoint.get("dtls_private_key") == "/etc/asterisk/keys/dtls.key", dn
        assert endpoint.get("context") == "from-webrtc", dn
        assert endpoint.get("allow") == "ulaw,alaw", dn


@modes
def test_genesys_is_a_plain_rtp_trunk_identified_by_its_address(mode: str) -> None:
    sections = asterisk_sections(_pjsip(mode))
    genesys = next(s for s in sections if s.type == "endpoint" and s.name == "genesys")
    assert genesys.get("context") == "from-genesys"
    assert genesys.get("webrtc") is None and genesys.get("direct_media") == "no"
    identify = next(s for s in sections if s.type == "identify")
    assert identify.get("endpoint") == "genesys" and identify.get("match") == GENESYS
    aor = next(s for s in sections if s.type == "aor" and s.name == "genesys")
    assert aor.get("contact") == f"sip:{GENESYS}:5060"


@modes
def test_dialplan_sends_agents_to_genesys_only_inside_the_allow_list(mode: str) -> None:
    text = render_lab("asterisk", "extensions.conf.j2", mode)
    assert "DIAL_ALLOW=^[0-9]{2,15}$" in text
    assert "Dial(PJSIP/${EXTEN}@genesys," in text
    assert "Dial(PJSIP/${EXTEN},30)" in text  # Genesys -> agent, along the client's Path
    assert "Hangup(21)" in text  # refused number: 403


@modes
def test_kamailio_relays_calls_only_to_allowed_numbers_and_tracks_live_connections(mode: str) -> None:
    text = _proxy(mode)
    assert '#!define DIAL_ALLOW_RE "^[0-9]{2,15}$"' in text
    assert 'loadmodule "tcpops.so"' in text
    assert "event_route[tcp:closed]" in text
    assert "record_route();" in text
