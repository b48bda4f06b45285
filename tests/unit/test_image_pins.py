"""The gateway image's package pins (issue 18 item 7): the build installs exactly the tested
versions, and stops, naming each package, when the archive no longer has a pinned one."""

from __future__ import annotations

import re

import pytest
from image_pins import packages, rewrite
from lab.daemons import IMAGE, docker
from lab.rendering import ROLES, lab_variables, render_lab

CHECK = ROLES / "gateway" / "files" / "check-image-pins.sh"
DEFAULTS = ROLES / "gateway" / "defaults" / "main.yml"


def test_every_package_is_installed_at_its_pin() -> None:
    variables = lab_variables("kamailio")
    dockerfile = render_lab("gateway", "Dockerfile.j2", "kamailio")
    pins = variables["gateway_image_pins"]
    assert set(pins) == set(variables["gateway_image_packages"])
    for name in variables["gateway_image_packages"]:
        pinned = f"{name}={pins[name]}"
        # Once for the check, once for apt-get install.
        assert len(re.findall(rf"(?<![\w.+-]){re.escape(pinned)}(?![\w.+:~-])", dockerfile)) == 2, name


def test_the_pin_tool_reads_and_rewrites_only_its_block() -> None:
    text = DEFAULTS.read_text()
    names = packages(text)
    assert names == lab_variables("kamailio")["gateway_image_packages"]
    new = rewrite(text, dict.fromkeys(names, "9.9-9"))
    assert new.count('"9.9-9"') == len(names)
    outside = text.split("# BEGIN gateway_image_pins")[0], text.split("# END gateway_image_pins")[1]
    assert new.startswith(outside[0]) and new.endswith(outside[1])


def _check(*pins: str) -> tuple[int, str]:
    # In the built image apt has no lists: apt-cache knows the installed versions only.
    result = docker(
        "run", "--rm", "--network", "none", "--pull", "never",
        "-v", f"{CHECK}:/check-image-pins:ro", IMAGE, "sh", "/check-image-pins", *pins,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


@pytest.mark.daemon
def test_the_image_holds_the_pinned_versions() -> None:
    pins = lab_variables("kamailio")["gateway_image_pins"]
    code, output = _check(*(f"{name}={version}" for name, version in pins.items()))
    assert code == 0, output


@pytest.mark.daemon
def test_a_pin_the_archive_does_not_have_stops_the_build_naming_the_package() -> None:
    pins = lab_variables("kamailio")["gateway_image_pins"]
    code, output = _check(f"kamailio={pins['kamailio']}", "procps=0.0-gone", "curl=0.0-gone")
    assert code == 1, output
    assert "procps=0.0-gone (the archive has: " + pins["procps"] + ")" in output
    assert "curl=0.0-gone" in output
    assert "kamailio=" not in output
    assert "make image-pins" in output
