"""What the monitor knows, kept without I/O: contacts at Asterisk, bindings at Genesys, failures.

- contacts:      DN -> {contact URI: ContactStatus} at Asterisk (AMI events + PJSIPShowContacts)
- registrations: DN -> status of Asterisk's static registration at Genesys (Registry events +
                 PJSIPShowRegistrationsOutbound)
- forwarded:     DN -> Genesys's last answer to Kamailio's mirror (htable fwdres, JSON-RPC)

"Bound at Genesys" depends on the active mode: static -> the DN's static registration is
``Registered``; kamailio -> the last forwarded answer is 2xx with expires > 0 and not yet run out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .events import ContactChange, RegistryChange, snapshot_changes

REGISTERED: Final = "Registered"
REJECTED: Final = "Rejected"
# fwdres codes Kamailio writes itself: 408 on a local timeout (no answer), 0 when nothing could be sent.
CODE_TIMEOUT: Final = 408
CODE_NOT_SENT: Final = 0


@dataclass(frozen=True)
class ForwardOutcome:
    """Genesys's last answer to Kamailio's mirrored REGISTER of a DN ("<code>|<expires>|<unix time>")."""

    code: int
    expires: int
    time: int

    @property
    def success(self) -> bool:
        return 200 <= self.code < 300

    def bound(self, now: float) -> bool:
        return self.success and self.expires > 0 and self.time + self.expires > now

    @property
    def failure_reason(self) -> str | None:
        """None for a 2xx; else the label of the failures counter: "timeout", "not_sent" or the SIP code."""
        if self.success:
            return None
        if self.code == CODE_TIMEOUT:
            return "timeout"
        if self.code == CODE_NOT_SENT:
            return "not_sent"
        return str(self.code)

    @property
    def event(self) -> str:
        """The event name logged for this outcome."""
        if self.success:
            return REGISTERED if self.expires > 0 else "Unregistered"
        reason = self.failure_reason
        return "Timeout" if reason == "timeout" else ("NotSent" if reason == "not_sent" else f"Rejected {self.code}")


@dataclass(frozen=True)
class Counts:
    registered_asterisk: int
    bound_genesys: int
    unbound_genesys: int

    def as_dict(self) -> dict[str, int]:
        return {
            "registered_asterisk": self.registered_asterisk,
            "bound_genesys": self.bound_genesys,
            "unbound_genesys": self.unbound_genesys,
        }


class MonitorState:
    """Pure state keeping. Every mutator returns what changed, for the caller to log."""

    def __init__(self, mode: str, dns: Iterable[str] = ()) -> None:
        self.mode = mode
        self.dns: tuple[str, ...] = tuple(dns)
        self.contacts: dict[str, dict[str, str]] = {}
        self.registrations: dict[str, str] = {}
        self.forwarded: dict[str, ForwardOutcome] = {}
        self.failures: Counter[str] = Counter()
        self.ami_connected = False
        self.ami_reconnects = 0
        self.synced = False
        self.kamailio_reachable: bool | None = None
        self._forwarded_baseline = False
        self._registrations_baseline = False

    # ---------------------------------------------------------------- Asterisk contacts

    def apply_contact(self, change: ContactChange) -> bool:
        """Apply a ContactStatus event; True when the set of contacts or a status changed."""
        uris = self.contacts.get(change.dn, {})
        if change.present:
            if uris.get(change.uri) == change.status:
                return False
            self.contacts.setdefault(change.dn, {})[change.uri] = change.status
            return True
        if change.uri not in uris:
            return False
        del uris[change.uri]
        if not uris:
            del self.contacts[change.dn]
        return True

    def replace_contacts(self, snapshot: Mapping[str, Mapping[str, str]]) -> list[ContactChange]:
        """Take PJSIPShowContacts' view as the truth; the contact changes it revealed."""
        changes = list(snapshot_changes(self.contacts, snapshot))
        self.contacts = {dn: dict(uris) for dn, uris in snapshot.items() if uris}
        return changes

    # ---------------------------------------------------------------- static registrations

    def apply_registry(self, change: RegistryChange, *, count: bool = True) -> str | None:
        """Apply a Registry event; the failure reason counted (each Rejected answer is one failure)."""
        self.registrations[change.dn] = change.status
        if change.status == REJECTED and count:
            self.failures["rejected"] += 1
            return "rejected"
        return None

    def replace_registrations(self, snapshot: Mapping[str, str]) -> list[RegistryChange]:
        """Take PJSIPShowRegistrationsOutbound's view as the truth; the status changes it revealed.

        A registration that turned Rejected while no event could be seen counts as one failure (not on
        the first snapshot after start, which only sets the baseline).
        """
        changes: list[RegistryChange] = []
        for dn in sorted(set(self.registrations) | set(snapshot)):
            old, new = self.registrations.get(dn), snapshot.get(dn)
            if old == new:
                continue
            changes.append(RegistryChange(dn, new if new is not None else "Removed", ""))
            if new == REJECTED and self._registrations_baseline:
                self.failures["rejected"] += 1
        self._registrations_baseline = True
        self.registrations = dict(snapshot)
        return changes

    # ---------------------------------------------------------------- Kamailio's forwarded outcomes

    def replace_forwarded(self, snapshot: Mapping[str, ForwardOutcome]) -> list[tuple[str, ForwardOutcome]]:
        """Take a fwdres dump as the truth; the DNs with a new outcome (each new failed one is counted).

        The first dump after start only sets the baseline: outcomes older than the monitor are not
        counted again at every restart.
        """
        changed = [(dn, outcome) for dn, outcome in sorted(snapshot.items()) if self.forwarded.get(dn) != outcome]
        if self._forwarded_baseline:
            for _dn, outcome in changed:
                reason = outcome.failure_reason
                if reason is not None:
                    self.failures[reason] += 1
        self._forwarded_baseline = True
        self.forwarded = dict(snapshot)
        return changed

    # ---------------------------------------------------------------- derived views

    def registered_asterisk(self) -> set[str]:
        """DNs with a contact at Asterisk. With a configured DN list, only those count: a DN
        removed from the gateway can leave contacts behind in Asterisk's astdb until they expire."""
        registered = {dn for dn, uris in self.contacts.items() if uris}
        return registered & set(self.dns) if self.dns else registered

    def bound_static(self) -> set[str]:
        """DNs whose static registration (Asterisk's type=registration) is Registered."""
        return {dn for dn, status in self.registrations.items() if status == REGISTERED}

    def bound_kamailio(self, now: float) -> set[str]:
        """DNs Kamailio's last forwarded REGISTER bound at Genesys (2xx, expires > 0, not run out)."""
        return {dn for dn, outcome in self.forwarded.items() if outcome.bound(now)}

    def bound_genesys(self, now: float) -> set[str]:
        """DNs bound at Genesys through the active mode."""
        return self.bound_static() if self.mode == "static" else self.bound_kamailio(now)

    def counts(self, now: float) -> Counts:
        registered = self.registered_asterisk()
        bound = self.bound_genesys(now)
        return Counts(len(registered), len(bound), len(registered - bound))

    def per_dn(self, now: float) -> dict[str, dict[str, bool]]:
        """Per DN: registered at Asterisk, bound through the active mode, and through each path.

        Both paths matter during a switch: the monitor keeps the old mode until the switch ends.
        """
        registered = self.registered_asterisk()
        static, kamailio = self.bound_static(), self.bound_kamailio(now)
        bound = static if self.mode == "static" else kamailio
        return {
            dn: {
                "registered_asterisk": dn in registered,
                "bound_genesys": dn in bound,
                "bound_static": dn in static,
                "bound_kamailio": dn in kamailio,
            }
            for dn in sorted(set(self.dns) | registered | static | kamailio)
        }

    def snapshot(self, now: float) -> dict[str, Any]:
        """The /state document: per-DN booleans and the three counts."""
        return {
            "mode": self.mode,
            "time": now,
            "ami_connected": self.ami_connected,
            "synced": self.synced,
            "kamailio_reachable": self.kamailio_reachable,
            "counts": self.counts(now).as_dict(),
            "dns": self.per_dn(now),
        }
