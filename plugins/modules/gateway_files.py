#!/usr/bin/python
"""Install a role's files under the gateway's project directory in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_files
short_description: Install the files a gateway role renders, in one run, each validated before it lands
version_added: "1.1.0"
description:
  - Takes a role's whole list of files, as the role's C(render.yml) entry point renders them on the controller
    ({path under the project directory, content, mode}), and installs those whose content, mode or owner
    differ, owned by root.
  - Each file is written to a temporary file next to it, checked by its validation command when it has one
    (C(%s) is the temporary file, as in ansible.builtin.template), and renamed over the old one.
  - Files are installed in the order given, O(secret_files) first, so that a validation can read a secret the
    config includes (Kamailio's C(genesys-auth.cfg), nginx's TLS key).
  - Replaces one template or copy task per file, and a skip guard on each.
author:
  - webrtc-genesys team
options:
  root:
    description:
      - The project directory the paths are relative to.
    type: path
    required: true
  files:
    description:
      - The files to install, as {path, {content, mode, validate, secret}}. C(mode) is an octal string such as
        V(0644). A file marked C(secret) takes its content from O(secret_files). An entry without content (another
        task provides that file) is left out. Other keys are ignored.
      - The differences of the files not marked C(secret) are shown with C(--diff).
      - The filter gcti.webrtc_genesys.gateway_files_args builds it from a role's rendered files.
    type: dict
    default: {}
  secret_files:
    description:
      - The content of the files marked C(secret) in O(files), as {path, content}. Never shown, not even their
        differences; a change names the path only.
    type: dict
    default: {}
notes:
  - Check mode reports what would change and writes nothing; a validation runs only when a file is written.
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Install what the kamailio role rendered
  gcti.webrtc_genesys.gateway_files:
    root: /opt/webrtc-genesys/gateway
    files:
      kamailio/genesys-auth.cfg:
        mode: "0640"
        secret: true
      kamailio/kamailio-proxy.cfg:
        content: "{{ lookup('ansible.builtin.template', 'kamailio-proxy.cfg.j2') }}"
        mode: "0640"
        validate: docker run --rm -v %s:/tmp/k.cfg:ro gateway:latest kamailio -c -f /tmp/k.cfg
    secret_files:
      kamailio/genesys-auth.cfg: "{{ lookup('ansible.builtin.template', 'genesys-auth.cfg.j2') }}"
  register: kamailio_files
"""

RETURN = r"""
changed_paths:
  description: The paths (relative to O(root)) that were installed, or would be in check mode.
  returned: always
  type: list
  elements: str
  sample: [kamailio/kamailio-proxy.cfg]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gcti.webrtc_genesys.plugins.module_utils.installed import (
    InstallError,
    Runner,
    current,
    differs,
    install,
    wanted_from,
)

ARGUMENT_SPEC: dict[str, Any] = {
    "root": {"type": "path", "required": True},
    "files": {"type": "dict", "default": {}},
    "secret_files": {"type": "dict", "default": {}, "no_log": True},
}


def apply(
    root: str, files: dict[str, Any], secret_files: dict[str, str], run: Runner, *, check_mode: bool, want_diff: bool
) -> dict[str, Any]:
    """Install what differs, secret files first; return {changed, changed_paths, diff}."""
    wanted = wanted_from(files, secret_files)
    changed: list[str] = []
    diffs: list[dict[str, str]] = []
    for want in sorted(wanted, key=lambda w: not w.secret):  # stable: the given order otherwise
        if not differs(root, want):
            continue
        if want_diff and not want.secret:
            diffs.append(
                {
                    "before_header": want.path,
                    "after_header": want.path,
                    "before": current(root, want.path),
                    "after": want.content,
                }
            )
        if not check_mode:
            install(root, want, run)
        changed.append(want.path)
    return {"changed": bool(changed), "changed_paths": changed, "diff": diffs}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = apply(
            module.params["root"],
            module.params["files"],
            module.params["secret_files"],
            module.run_command,
            check_mode=module.check_mode,
            want_diff=module._diff,
        )
    except InstallError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
