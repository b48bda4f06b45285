"""The monitor's configuration (monitor.json, rendered by the role): load, validate, keep the secret hidden."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

MODES: Final = ("kamailio", "static")
_DN: Final = re.compile(r"^[0-9]{2,15}$")
_MAX_PORT: Final = 65535


class ConfigError(ValueError):
    """monitor.json is missing, not JSON, or holds a bad value (the message names the key)."""


class Secret:
    """A string that never shows itself: str(), repr() and format() all print a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __format__(self, _spec: str) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a Secret is not picklable")


@dataclass(frozen=True)
class Config:
    mode: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: Secret = field(repr=False)
    kamailio_rpc_url: str
    listen_address: str
    listen_port: int
    poll_interval: float
    dns: tuple[str, ...] = ()
    reconnect_initial_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    resync_interval: float = 60.0
    action_timeout: float = 10.0
    # Static mode: the Genesys address the static registrations use, probed with OPTIONS ("" = none).
    genesys_address: str = ""
    genesys_port: int = 5060
    genesys_domain: str = ""
    genesys_probe_interval: float = 2.0
    # Static registrations sent again per second when Genesys answers again.
    reassert_rate: float = 200.0

    def describe(self) -> str:
        """One line for the start-up log (no secret)."""
        return (
            f"mode={self.mode} ami={self.ami_user}@{self.ami_host}:{self.ami_port} "
            f"kamailio_rpc_url={self.kamailio_rpc_url} listen={self.listen_address}:{self.listen_port} "
            f"poll_interval={self.poll_interval:g}s dns={len(self.dns)}"
            + (
                f" genesys={self.genesys_address}:{self.genesys_port} probe={self.genesys_probe_interval:g}s "
                f"reassert_rate={self.reassert_rate:g}/s"
                if self.genesys_address
                else ""
            )
        )


def _string(data: Mapping[str, Any], key: str, *, empty: bool = False) -> str:
    if key not in data:
        raise ConfigError(f"'{key}' is missing")
    value = data[key]
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ConfigError(f"'{key}' must be a non-empty string")
    return value


def _port(data: Mapping[str, Any], key: str) -> int:
    if key not in data:
        raise ConfigError(f"'{key}' is missing")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_PORT:
        raise ConfigError(f"'{key}' must be an integer port 1-{_MAX_PORT} (got {value!r})")
    return value


def _seconds(data: Mapping[str, Any], key: str, default: float | None = None) -> float:
    if key not in data:
        if default is None:
            raise ConfigError(f"'{key}' is missing")
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"'{key}' must be a positive number of seconds (got {value!r})")
    return float(value)


def _rate(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"'{key}' must be a positive number per second (got {value!r})")
    return float(value)


def parse_config(data: Any) -> Config:
    """A Config from monitor.json's parsed content; ConfigError naming the key when a value is bad."""
    if not isinstance(data, Mapping):
        raise ConfigError("the configuration must be a JSON object")
    mode = _string(data, "mode")
    if mode not in MODES:
        raise ConfigError(f"'mode' must be one of {', '.join(MODES)} (got {mode!r})")
    secret = data.get("ami_secret")
    if not isinstance(secret, str) or not secret:
        raise ConfigError("'ami_secret' must be a non-empty string")
    url = _string(data, "kamailio_rpc_url")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"'kamailio_rpc_url' must be an http(s) URL (got {url!r})")
    dns = data.get("dns", [])
    if not isinstance(dns, list) or not all(isinstance(dn, str) and _DN.match(dn) for dn in dns):
        raise ConfigError("'dns' must be a list of DNs (strings of 2-15 digits)")
    initial = _seconds(data, "reconnect_initial_delay", 1.0)
    maximum = _seconds(data, "reconnect_max_delay", 30.0)
    if maximum < initial:
        raise ConfigError(
            f"'reconnect_max_delay' ({maximum:g}) must not be below 'reconnect_initial_delay' ({initial:g})"
        )
    genesys_address = _string(data, "genesys_address", empty=True) if "genesys_address" in data else ""
    genesys_port = _port(data, "genesys_port") if "genesys_port" in data else 5060
    genesys_domain = _string(data, "genesys_domain", empty=True) if "genesys_domain" in data else ""
    return Config(
        mode=mode,
        ami_host=_string(data, "ami_host"),
        ami_port=_port(data, "ami_port"),
        ami_user=_string(data, "ami_user"),
        ami_secret=Secret(secret),
        kamailio_rpc_url=url,
        listen_address=_string(data, "listen_address"),
        listen_port=_port(data, "listen_port"),
        poll_interval=_seconds(data, "poll_interval"),
        dns=tuple(dict.fromkeys(dns)),
        reconnect_initial_delay=initial,
        reconnect_max_delay=maximum,
        resync_interval=_seconds(data, "resync_interval", 60.0),
        action_timeout=_seconds(data, "action_timeout", 10.0),
        genesys_address=genesys_address.strip(),
        genesys_port=genesys_port,
        genesys_domain=genesys_domain.strip() or genesys_address.strip(),
        genesys_probe_interval=_seconds(data, "genesys_probe_interval", 2.0),
        reassert_rate=_rate(data, "reassert_rate", 200.0),
    )


def load_config(path: Path) -> Config:
    """Read and validate monitor.json; ConfigError (with the path) when it cannot be used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        # Not the text itself: it holds the secret.
        raise ConfigError(f"{path}: not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
