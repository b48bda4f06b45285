"""monitor.json: the role's template loads, bad values are named, the secret never shows."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab.rendering import MODES, render_lab
from registration_monitor.__main__ import RedactSecret, main
from registration_monitor.config import Config, ConfigError, Secret, load_config, parse_config

SECRET = "s3cr3t-ami-value"


def valid(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mode": "kamailio",
        "ami_host": "127.0.0.54",
        "ami_port": 5038,
        "ami_user": "monitor",
        "ami_secret": SECRET,
        "kamailio_rpc_url": "http://127.0.0.54:5071/RPC",
        "listen_address": "127.0.0.54",
        "listen_port": 9110,
        "poll_interval": 2,
        "dns": ["1002", "1003"],
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("mode", MODES)
def test_the_roles_rendered_config_loads(mode: str, tmp_path: Path) -> None:
    path = tmp_path / "monitor.json"
    path.write_text(render_lab("registration_monitor", "monitor.json.j2", mode), encoding="utf-8")
    config = load_config(path)
    assert config.mode == mode
    assert (config.ami_host, config.ami_port, config.listen_address, config.listen_port) == (
        "127.0.0.54",
        5038,
        "127.0.0.54",
        9110,
    )
    assert config.dns == ("1002", "1003")
    assert config.reconnect_initial_delay == 1.0
    assert config.reconnect_max_delay == 30.0
    assert config.resync_interval == 60.0
    # static mode's probe goes where Asterisk's static registrations go: the lab's stand-in
    assert (config.genesys_address, config.genesys_port, config.genesys_probe_interval) == ("127.0.0.81", 5060, 2.0)
    assert config.reassert_rate == 200.0


def test_defaults_of_the_optional_settings() -> None:
    config = parse_config(valid())
    assert (config.reconnect_initial_delay, config.reconnect_max_delay, config.resync_interval) == (1.0, 30.0, 60.0)
    assert config.ami_secret.reveal() == SECRET
    assert (config.genesys_address, config.reassert_rate) == ("", 200.0)  # no probe unless asked


def test_the_secret_never_shows(tmp_path: Path) -> None:
    config = parse_config(valid())
    for text in (repr(config), str(config), config.describe(), f"{config.ami_secret}", str(config.ami_secret)):
        assert SECRET not in text
    assert "********" in f"{config.ami_secret}"
    with pytest.raises(TypeError):
        __import__("pickle").dumps(config.ami_secret)
    # Not even when the file is broken around it.
    broken = tmp_path / "monitor.json"
    broken.write_text(json.dumps(valid())[:-1], encoding="utf-8")
    with pytest.raises(ConfigError) as failure:
        load_config(broken)
    assert SECRET not in str(failure.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "both"}, "'mode' must be one of kamailio, static"),
        ({"ami_port": "5038"}, "'ami_port' must be an integer port"),
        ({"ami_port": True}, "'ami_port' must be an integer port"),
        ({"listen_port": 70000}, "'listen_port' must be an integer port"),
        ({"ami_secret": ""}, "'ami_secret' must be a non-empty string"),
        ({"kamailio_rpc_url": "127.0.0.1:5071"}, "'kamailio_rpc_url' must be an http(s) URL"),
        ({"poll_interval": 0}, "'poll_interval' must be a positive number"),
        ({"dns": ["1002", 1003]}, "'dns' must be a list of DNs"),
        ({"reconnect_initial_delay": 5, "reconnect_max_delay": 2}, "'reconnect_max_delay' (2) must not be below"),
        ({"genesys_port": 0}, "'genesys_port' must be an integer port"),
        ({"genesys_probe_interval": 0}, "'genesys_probe_interval' must be a positive number of seconds"),
        ({"reassert_rate": -1}, "'reassert_rate' must be a positive number per second"),
        ({"genesys_address": 5}, "'genesys_address' must be a non-empty string"),
    ],
)
def test_bad_values_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(valid(**overrides))


@pytest.mark.parametrize("key", ["mode", "ami_host", "ami_port", "ami_user", "ami_secret", "listen_port"])
def test_missing_keys_are_named(key: str) -> None:
    data = valid()
    del data[key]
    with pytest.raises(ConfigError, match=f"'{key}'"):
        parse_config(data)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """main() installs its own handlers on the root logger: put the test run's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_cli_exits_2_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "monitor.json"
    path.write_text(json.dumps(valid(mode="nope")), encoding="utf-8")
    assert main(["--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert "'mode' must be one of" in captured.err
    assert SECRET not in captured.err + captured.out


def test_log_filter_masks_the_secret_whoever_logs_it() -> None:
    record = logging.LogRecord("panoramisk", logging.ERROR, __file__, 1, "Fail to send %r", ({"Secret": SECRET},), None)
    assert RedactSecret(Secret(SECRET)).filter(record)
    assert SECRET not in record.getMessage()
    assert "********" in record.getMessage()


def test_config_is_immutable() -> None:
    config = parse_config(valid())
    assert isinstance(config, Config)
    with pytest.raises(AttributeError):
        config.mode = "static"  # type: ignore[misc]
