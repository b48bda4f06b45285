"""The gateway role's input checks, as Python (issue 30): which settings break a rule, and which
secrets a daemon's config file cannot hold. ``roles/gateway/tasks/validate.yml`` asserts that both
lists are empty before anything on the host changes. Each problem names the setting (and the DN),
never a secret's value. Documented in gateway_input_problems.yml and gateway_secret_problems.yml."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

_IPV4: Final = re.compile(r"^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$")
_HOST: Final = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_DN: Final = re.compile(r"^[0-9]{2,15}$")
_DIGITS: Final = re.compile(r"^[0-9]+$")
_SECONDS: Final = re.compile(r"^[0-9]*\.?[0-9]+$")
_DIAL_ALLOW: Final = re.compile(r"^\^[][0-9A-Za-z*#+(){}|,.?-]+\$$")
_CONTACT_PREFIX: Final = re.compile(r"^[a-mo-wyA-MO-WY]{1,8}$")
_MAX_PORT: Final = 65535
_MAX_FAILOVER: Final = 8
_CONTROL_KINDS: Final = (
    ("\n", "a line break"),
    ("\r", "a carriage return"),
    ("\t", "a tab"),
    ("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "another control character"),
)

Rule = Callable[[Mapping[str, Any]], Iterable[str]]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int_in(value: Any, low: int, high: int) -> bool:
    text = _text(value)
    return bool(_DIGITS.match(text)) and low <= int(text) <= high


def _mode(s: Mapping[str, Any]) -> Iterable[str]:
    if s["webrtc_mode"] not in ("kamailio", "static"):
        yield f"webrtc_mode must be 'kamailio' or 'static' (got '{s['webrtc_mode']}')"


def _dns(s: Mapping[str, Any]) -> Iterable[str]:
    dns = s["webrtc_dns"]
    if isinstance(dns, (str, Mapping)) or not isinstance(dns, Sequence):
        yield f"webrtc_dns must be a list of {{dn, password}} (got a {type(dns).__name__})"
        return
    if not dns:
        yield "webrtc_dns must list at least one DN (Asterisk authenticates every agent, in both modes)"
        return
    seen: set[str] = set()
    for index, item in enumerate(dns, start=1):
        if not isinstance(item, Mapping):
            yield f"webrtc_dns: item {index} must be a {{dn, password}} mapping"
            continue
        dn = _text(item.get("dn", ""))
        if not _DN.match(dn):
            yield f"webrtc_dns: a DN must be 2-15 digits (got '{dn}')"
        elif dn in seen:
            yield f"webrtc_dns: DN {dn} is listed more than once"
        seen.add(dn)
        password = item.get("password")
        if not isinstance(password, str) or password == "":
            yield f"webrtc_dns: the password of DN {dn} must be a non-empty string (quote it in YAML)"


def _addresses(s: Mapping[str, Any]) -> Iterable[str]:
    for name in ("webrtc_gateway_address", "webrtc_asterisk_sip_address", "webrtc_genesys_address"):
        if not _IPV4.match(_text(s[name])):
            why = (
                "; Genesys is given by address, not by host name (README, Running it against a real gateway)"
                if name == "webrtc_genesys_address"
                else ""
            )
            yield f"{name} must be an IPv4 address (got '{s[name]}'){why}"
    failover = list(s["webrtc_genesys_failover_addresses"] or [])
    for address in failover:
        if not _IPV4.match(_text(address)):
            yield f"webrtc_genesys_failover_addresses: each must be an IPv4 address (got '{address}')"
    everyone = [_text(s["webrtc_genesys_address"]), *map(_text, failover)]
    if len(set(everyone)) != len(everyone):
        listed = ", ".join(map(_text, failover))
        yield (
            "webrtc_genesys_failover_addresses must not repeat an address nor hold webrtc_genesys_address "
            f"(got {listed})"
        )
    if len(failover) > _MAX_FAILOVER:
        yield f"webrtc_genesys_failover_addresses holds at most {_MAX_FAILOVER} addresses"
    domain = _text(s["webrtc_genesys_domain"])
    if not _IPV4.match(domain) and not _HOST.match(domain):
        yield (
            "webrtc_genesys_domain must be a host name (letters, digits, '-' and '.') or an IPv4 address "
            f"(got '{domain}')"
        )


def _ports(s: Mapping[str, Any]) -> Iterable[str]:
    listeners = [(str(port["name"]), port["value"]) for port in s["gateway_ports"]]
    for name, value in [*listeners, ("webrtc_genesys_port", s["webrtc_genesys_port"])]:
        if not _int_in(value, 1, _MAX_PORT):
            yield f"{name} must be an integer 1-65535 (got '{value}')"
    for name, value in listeners:
        others = [other for other, port in listeners if other != name and _text(port) == _text(value)]
        if others:
            clash = ", ".join(others)
            yield f"{name} ({value}) clashes with {clash}: each of the gateway's listeners needs its own port"


def _strings(s: Mapping[str, Any]) -> Iterable[str]:
    regex = _text(s["webrtc_dial_allow_regex"])
    if not _DIAL_ALLOW.match(regex):
        yield (
            "webrtc_dial_allow_regex must be an anchored regular expression (^...$) made of digits, letters and "
            f"[]{{}}()|,.?*+#- only: it goes into Kamailio's and Asterisk's configs as is (got '{regex}')"
        )
    if not _text(s["webrtc_project_dir"]).startswith("/"):
        yield f"webrtc_project_dir must be an absolute path (got '{s['webrtc_project_dir']}')"
    prefix = _text(s["webrtc_forwarded_contact_prefix"])
    if not _CONTACT_PREFIX.match(prefix):
        yield (
            "webrtc_forwarded_contact_prefix must be 1-8 letters other than n, x and z (Asterisk's dialplan "
            f"patterns give those a meaning) (got '{prefix}')"
        )


def _tunables(s: Mapping[str, Any]) -> Iterable[str]:
    batch = s["gateway_kamailio_log_batch_ms"]
    if not _int_in(batch, 1, 1000):
        yield f"gateway_kamailio_log_batch_ms must be an integer 1-1000 (got '{batch}')"
    poll = _text(s["gateway_poll_interval"])
    if not _SECONDS.match(poll) or not 0.05 <= float(poll) <= 5:
        yield f"gateway_poll_interval must be a number of seconds 0.05-5 (got '{poll}')"


def _gone(s: Mapping[str, Any]) -> Iterable[str]:
    if s.get("webrtc_genesys_registrar") is not None:
        yield (
            "webrtc_genesys_registrar is gone: the switch reads how Genesys treats contacts from Genesys's own "
            f"answers; remove it from the inventory (got '{s['webrtc_genesys_registrar']}')"
        )


def _genesys_auth(s: Mapping[str, Any]) -> Iterable[str]:
    if s["webrtc_genesys_auth_enabled"]:
        for name in ("webrtc_genesys_auth_user", "webrtc_genesys_auth_password"):
            if len(_text(s[name])) == 0:
                yield f"{name} is required when webrtc_genesys_auth_enabled is true"


def _pins(s: Mapping[str, Any]) -> Iterable[str]:
    unpinned = [package for package in s["gateway_image_packages"] if package not in s["gateway_image_pins"]]
    if unpinned:
        yield (
            f"gateway_image_pins has no version for {', '.join(unpinned)} (of gateway_image_packages): "
            "pin each package the image installs (make image-pins)"
        )


INPUT_RULES: Final[tuple[Rule, ...]] = (
    _mode,
    _dns,
    _addresses,
    _ports,
    _strings,
    _tunables,
    _gone,
    _genesys_auth,
    _pins,
)


def gateway_input_problems(settings: Mapping[str, Any]) -> list[str]:
    """Every rule the gateway's settings break, each naming the setting and the value (never a secret)."""
    return [problem for rule in INPUT_RULES for problem in rule(settings)]


def _secret_problems(name: str, value: str, quoted: bool) -> Iterable[str]:
    if re.search("[\x00-\x1f\x7f]", value):
        kinds = [kind for pattern, kind in _CONTROL_KINDS if re.search(pattern, value)]
        yield f"{name} contains {' and '.join(kinds)}"
    if value != value.strip():
        yield f"{name} starts or ends with a space"
    if value.startswith(">"):
        yield f'{name} starts with ">" (Asterisk would read "=>")'
    if quoted and '"' in value:
        yield f"{name} contains a double quote ('\"')"
    if quoted and "\\" in value:
        yield f"{name} contains a backslash"


def gateway_secret_problems(settings: Mapping[str, Any]) -> list[str]:
    """The secrets the daemons' config files cannot hold, named by setting and DN (never the value).

    Asterisk's files take any character but control characters, surrounding spaces and a leading
    ">" (";" is written as "\\;"); Kamailio's config holds the Genesys credentials in a quoted string.
    """
    checks: list[tuple[str, str, bool]] = [
        (f"webrtc_dns: the password of DN {item.get('dn', '?')}", _text(item.get("password", "")), False)
        for item in settings.get("webrtc_dns") or []
        if isinstance(item, Mapping)
    ]
    checks += [
        ("webrtc_genesys_auth_user", _text(settings.get("webrtc_genesys_auth_user")), True),
        ("webrtc_genesys_auth_password", _text(settings.get("webrtc_genesys_auth_password")), True),
        ("asterisk_ami_secret", _text(settings.get("asterisk_ami_secret")), False),
    ]
    return [problem for name, value, quoted in checks for problem in _secret_problems(name, value, quoted)]


class FilterModule:
    """gcti.webrtc_genesys.gateway_input_problems and gcti.webrtc_genesys.gateway_secret_problems."""

    def filters(self) -> dict[str, Callable[..., list[str]]]:
        return {
            "gateway_input_problems": gateway_input_problems,
            "gateway_secret_problems": gateway_secret_problems,
        }
