"""Turn Asterisk AMI events into one JSON line each."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

_DN_FROM_AOR = re.compile(r"^(?:sips?:)?(?P<dn>[^@;/]+)")
_DN_FROM_URI = re.compile(r"^sips?:(?P<dn>[^@;]+)@")

WATCHED = ("ContactStatus", "Registry")


@dataclass(frozen=True)
class RegistrationEvent:
    """One registration event, as logged: the seed's "log events", parseable."""

    time: float
    dn: str
    event: str
    contact: str
    source: str
    mode: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def parse(fields: Mapping[str, str], mode: str, now: float | None = None) -> RegistrationEvent | None:
    """Map an AMI event to a RegistrationEvent, or None if it is not about a DN.

    ContactStatus (a client's contact at Asterisk): AOR, URI, ContactStatus.
    Registry (a static registration at Genesys): Username (client URI), Status.
    """
    stamp = time.time() if now is None else now
    name = fields.get("Event", "")
    if name == "ContactStatus":
        aor = fields.get("AOR", "")
        match = _DN_FROM_AOR.match(aor)
        if not match:
            return None
        return RegistrationEvent(
            time=stamp,
            dn=match.group("dn"),
            event=fields.get("ContactStatus", "Unknown"),
            contact=fields.get("URI", ""),
            source="asterisk",
            mode=mode,
        )
    if name == "Registry":
        user = fields.get("Username", "")
        match = _DN_FROM_URI.match(user) or _DN_FROM_AOR.match(user)
        if not match:
            return None
        return RegistrationEvent(
            time=stamp,
            dn=match.group("dn"),
            event=fields.get("Status", "Unknown"),
            contact=fields.get("Domain", ""),
            source="genesys-static",
            mode=mode,
        )
    return None
