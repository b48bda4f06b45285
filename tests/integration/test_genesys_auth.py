"""The Genesys stand-in demands digest auth: Kamailio answers with the configured credentials,
and the password appears in no log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab import (
    DN_PASSWORDS,
    FORWARDED_PREFIX,
    GATEWAY,
    LAB_VARS,
    STANDIN_PROJECT,
    WHOLE_HISTORY,
    compose,
    dns_vars,
    ensure_mode,
    forwarded_bindings,
    genesys_bindings,
    monitor_gauge,
    run_client,
    run_playbook,
    service_log,
    utc_now,
    wait_for,
    wait_for_text,
)

AUTH = {"webrtc_genesys_auth_enabled": True}
DN = "1002"


def _lab(extra: dict[str, object] | None) -> None:
    result = run_playbook("lab.yml", extra)
    assert result.returncode == 0, result.stdout[-3000:]
    ensure_mode("kamailio", extra)


@pytest.fixture(scope="module")
def genesys_demands_auth() -> Iterator[None]:
    _lab(AUTH)
    yield
    _lab({"webrtc_genesys_auth_enabled": False})


def standin_log() -> str:
    return compose("logs", "--no-log-prefix", "--no-color", "genesys", project=STANDIN_PROJECT)


def test_binding_is_made_with_the_configured_credentials(genesys_demands_auth: None) -> None:
    started = utc_now()
    run_client({DN: DN_PASSWORDS[DN]}, "register")
    [binding] = wait_for("1002 bound at the authenticating stand-in", lambda: forwarded_bindings(DN), timeout=5)
    assert binding["contact"] == f"sip:{FORWARDED_PREFIX}{DN}@{GATEWAY}:5060"
    log = service_log("kamailio", since=started)
    assert any(f"Genesys REGISTER reply for DN 1002 (expires {e}): 200" in log for e in (598, 599, 600)), log[-2000:]
    run_client({DN: DN_PASSWORDS[DN]}, "unregister")
    wait_for("1002 unbound", lambda: not forwarded_bindings(DN), timeout=5)


def test_no_password_in_any_log(genesys_demands_auth: None) -> None:
    secrets = [LAB_VARS["webrtc_genesys_auth_password"], *DN_PASSWORDS.values(), LAB_VARS["asterisk_ami_secret"]]
    logs = {
        "kamailio": service_log("kamailio", since=WHOLE_HISTORY),
        "asterisk": service_log("asterisk", since=WHOLE_HISTORY),
        "nginx": service_log("nginx", since=WHOLE_HISTORY),
        "registration-monitor": service_log("registration-monitor", since=WHOLE_HISTORY),
        "genesys-standin": standin_log(),
    }
    leaks = {name: [s for s in secrets if s in text] for name, text in logs.items()}
    assert all(not found for found in leaks.values()), {k: len(v) for k, v in leaks.items()}


def test_wrong_genesys_password_leaves_the_dn_unbound_and_says_so(genesys_demands_auth: None) -> None:
    """Near the end of the module: the fixture's teardown renders Kamailio again without auth."""
    wrong = {**AUTH, "webrtc_genesys_auth_password": "not-the-genesys-password"}
    ensure_mode("kamailio", wrong)
    started = utc_now()
    run_client({DN: DN_PASSWORDS[DN]}, "register")
    log = wait_for_text(
        "the refused forward in Kamailio's log",
        lambda: service_log("kamailio", since=started),
        "DN not registered upstream",
    )
    assert "Genesys REGISTER reply for DN 1002" in log
    assert forwarded_bindings(DN) == []


# Accepted secrets holding the characters each config file gives a meaning: for Asterisk ";"
# (a comment), "\;", "#", "[", "=>", "$"; for Kamailio's quoted strings ";", "#", "$", "'",
# braces; an inner space, ":" (the digest's separator) and a non-ASCII letter. The input checks
# accept them, so they must work: the agent registers with its password, the gateway at
# Genesys with its credentials and the monitor at Asterisk's AMI with its secret, in both modes.
AWKWARD_DN_PASSWORD = 'p"q;r\\;s#[x]=>y$z {a}: ü'
AWKWARD = {
    **AUTH,
    "webrtc_genesys_auth_user": "gw;user#1$x",
    "webrtc_genesys_auth_password": "g;p#w$r'd{x}[y]=z :q",
    "webrtc_dns": dns_vars({DN: AWKWARD_DN_PASSWORD}),
    # manager.conf's secret and the monitor's JSON config
    "asterisk_ami_secret": "ami;se#cr$et'\"{1}=>",
}


@pytest.mark.parametrize("mode", ["kamailio", "static"])
def test_accepted_secrets_with_config_syntax_characters_work(genesys_demands_auth: None, mode: str) -> None:
    """Last in the module: the fixture's teardown brings back the lab's own secrets and mode."""
    if mode == "kamailio":
        _lab(AWKWARD)  # the stand-in demands the awkward Genesys credentials; kamailio mode
    else:
        ensure_mode("static", AWKWARD)
        # Asterisk's own registration of the DN, with the Genesys credentials from pjsip.conf.
        wait_for(
            "Asterisk's static registration of 1002 bound at the authenticating stand-in",
            lambda: [b for b in genesys_bindings().get(DN, []) if ";line=" in b["contact"]],
            timeout=30,
        )
    events = run_client({DN: AWKWARD_DN_PASSWORD}, "register")
    assert any(e.get("event") == "registered" for e in events), events
    if mode == "kamailio":
        # Kamailio's mirrored registration, with the Genesys credentials from genesys-auth.cfg.
        wait_for("1002 forwarded and bound at the authenticating stand-in", lambda: forwarded_bindings(DN), timeout=10)
    run_client({DN: AWKWARD_DN_PASSWORD}, "unregister")
    # The registration monitor logs in to Asterisk's AMI with the awkward secret.
    wait_for("the monitor logged in to AMI", lambda: monitor_gauge("webrtc_monitor_ami_connected") == 1, timeout=30)
