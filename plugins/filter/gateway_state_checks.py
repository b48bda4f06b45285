"""Whether a gateway-state reading shows a mode as the mode table wants it, as Python (issue 30):
the reasons it does not, each in words. ``roles/gateway/tasks/verify.yml`` waits until the list
is empty; the switch's quick check takes the full path when it is not. Documented in
gateway_mode_problems.yml."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def gateway_mode_problems(
    state: Mapping[str, Any], mode: str, modes: Mapping[str, Mapping[str, Any]], dns: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Why `state` (bin/gateway-state's JSON) is not `mode` as `modes` (gateway_modes) has it:
    a service of the mode not up, one the mode stops still up, Kamailio's RPC or WebSocket not
    answering where Kamailio runs, a DN without its static registration where the mode has them,
    a static registration left where it has none. Empty: the gateway is in the mode."""
    if mode not in modes:
        return [f"unknown mode '{mode}'"]
    wanted = modes[mode]
    up = {name for name, running in (state.get("services") or {}).items() if running}
    problems = [f"{name} is not running" for name in wanted["services_up"] if name not in up]
    problems += [f"{name} is running (the mode stops it)" for name in wanted["services_stopped"] if name in up]
    kamailio = state.get("kamailio") or {}
    if "kamailio" in wanted["services_up"]:
        if not kamailio.get("reachable"):
            problems.append("Kamailio's RPC does not answer")
        if kamailio.get("ws_listening") is False:
            problems.append("Kamailio's WebSocket listener does not accept connections")
    registrations = (state.get("asterisk") or {}).get("registrations") or {}
    if wanted["static_registrations"]:
        bound = set((state.get("bound") or {}).get("static") or [])
        missing = [str(d["dn"]) for d in dns if str(d["dn"]) not in bound]
        if missing:
            problems.append(f"DN(s) {', '.join(missing)} not Registered by Asterisk's static registrations")
    elif registrations:
        problems.append(f"static registrations left at Asterisk: DN(s) {', '.join(sorted(registrations))}")
    return problems


class FilterModule:
    """gcti.webrtc_genesys.gateway_mode_problems."""

    def filters(self) -> dict[str, Callable[..., list[str]]]:
        return {"gateway_mode_problems": gateway_mode_problems}
