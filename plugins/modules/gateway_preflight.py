#!/usr/bin/python
"""The mode switch's pre-flight in one module run: the host, then the daemons' own checks of the configs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_preflight
short_description: Check a gateway host and the configs a switch is about to install, changing nothing
version_added: "1.1.0"
description:
  - The pre-flight of a mode switch; nothing on the gateway changes before it passed.
  - Host checks. Docker answers and compose v2 (2.18 or later) is installed; every listener in O(ports) is free
    or held by the daemon that should own it; Genesys at O(genesys) answers a SIP OPTIONS over UDP.
  - Config checks, when the host passed. The rendered configs in O(configs) are staged in a private temporary
    directory (with Asterisk's DTLS keys from O(keys_dir)) and checked at the same time by the daemons
    themselves, each in a throwaway container of O(image) with no network. C(nginx -t); C(kamailio -c) and a
    2 s start that must log no error; a real Asterisk boot with no error line, every DN's endpoint loaded and
    the mode's registrations (one per DN in static mode, none in kamailio mode).
  - Fails naming every problem found, starting with V(Pre-flight failed, nothing was changed).
author:
  - webrtc-genesys team
options:
  ports:
    description:
      - The listeners the target mode needs, each as [protocol, address, port, owning daemon].
    type: list
    elements: raw
    required: true
  genesys:
    description:
      - Genesys's SIP address as C(host:port).
    type: str
    required: true
  image:
    description:
      - The gateway image the throwaway containers run.
    type: str
    required: true
  address:
    description:
      - The gateway address the configs bind (added to each container's loopback).
    type: str
    required: true
  mode:
    description:
      - The target mode, for Asterisk's registrations.
    type: str
    required: true
    choices: [kamailio, static]
  dns:
    description:
      - Every configured DN.
    type: list
    elements: str
    required: true
  configs:
    description:
      - The rendered configs to check, as {path under the project directory, content} (C(nginx/), C(kamailio/),
        C(asterisk/etc/)). They hold secrets, so they are never shown.
    type: dict
    required: true
  keys_dir:
    description:
      - Asterisk's DTLS key directory on the host, copied into the staged C(asterisk/etc/keys).
    type: path
notes:
  - Changes nothing, so it runs in check mode too.
"""

EXAMPLES = r"""
- name: Pre-flight of the switch
  gcti.webrtc_genesys.gateway_preflight:
    ports: [[tcp, 127.0.0.54, 8443, nginx], [tcp, 127.0.0.54, 8080, kamailio]]
    genesys: 127.0.0.81:5060
    image: webrtc-genesys-gateway:latest
    address: 127.0.0.54
    mode: kamailio
    dns: ["1002", "1003"]
    configs: "{{ rendered_configs }}"
    keys_dir: /opt/webrtc-genesys/gateway/asterisk/etc/keys
"""

RETURN = r"""
problems:
  description: Every problem found (empty when the pre-flight passed).
  returned: always
  type: list
  elements: str
checks:
  description: Each check and its verdict (V(ok), V(FAILED), or V(not run) when the host failed).
  returned: always
  type: dict
  sample: {host: ok, nginx: ok, kamailio: ok, asterisk: ok}
"""

from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gcti.webrtc_genesys.plugins.module_utils.preflight import check_configs, check_host

ARGUMENT_SPEC: dict[str, Any] = {
    "ports": {"type": "list", "elements": "raw", "required": True},
    "genesys": {"type": "str", "required": True},
    "image": {"type": "str", "required": True},
    "address": {"type": "str", "required": True},
    "mode": {"type": "str", "required": True, "choices": ["kamailio", "static"]},
    "dns": {"type": "list", "elements": "str", "required": True},
    "configs": {"type": "dict", "required": True, "no_log": True},
    "keys_dir": {"type": "path"},
}


def preflight(params: dict[str, Any]) -> dict[str, Any]:
    """{checks, problems}: the host first; the configs only when the host passed."""
    problems = check_host(params["ports"], params["genesys"])
    checks = {"host": "FAILED" if problems else "ok"}
    if problems:
        checks.update(nginx="not run", kamailio="not run", asterisk="not run")
        return {"checks": checks, "problems": problems}
    keys = Path(params["keys_dir"]) if params.get("keys_dir") else None
    found = check_configs(
        params["image"],
        {str(k): str(v) for k, v in params["configs"].items()},
        keys,
        address=params["address"],
        mode=params["mode"],
        dns=params["dns"],
    )
    for daemon, daemon_problems in found.items():
        checks[daemon] = "FAILED" if daemon_problems else "ok"
        problems.extend(daemon_problems)
    return {"checks": checks, "problems": problems}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = preflight(module.params)
    if result["problems"]:
        module.fail_json(msg="Pre-flight failed, nothing was changed: " + "; ".join(result["problems"]), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
