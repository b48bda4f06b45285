"""What the monitor knows, kept without I/O: contacts at Asterisk, bindings at Genesys, failures.

- contacts:      DN -> {contact URI: ContactStatus} at Asterisk (AMI events + PJSIPShowContacts)
- registrations: DN -> status of Asterisk's static registration at Genesys (Registry events +
                 PJSIPShowRegistrationsOutbound)
- forwarded:     DN -> Genesys's last answer to Kamailio's mirror (htable fwdres, JSON-RPC)
- attempts / failures: registrations at Genesys whose answer the monitor saw, by path (static:
                 Asterisk's own, kamailio: forwarded), and the failed ones by reason; their ratio
                 is the failure ratio

"Bound at Genesys" depends on the active mode: static -> the DN's static registration is
``Registered``; kamailio -> the last forwarded answer is 2xx with expires > 0 and not yet run out.

- calls:         the calls between an agent and Genesys Asterisk has (AMI call events +
                 CoreShowChannels), keyed by the Uniqueid of the channel the call came in on
- call_attempts / call_failures: counters of set-ups seen, by direction / (direction, reason)

A *call* is a Dial() between an agent's PJSIP channel (a configured DN) and Genesys's (endpoint
``genesys``): ``inbound`` when it came in on Genesys's channel, ``outbound`` when on an agent's. It
is in progress from the ``DialEnd`` with ``ANSWER`` until the ``Hangup`` of either of its two
channels (the second Hangup finds nothing left). An attempt is counted once per call, at the first
event seen of it. A set-up failed with a ``DialEnd`` other than ANSWER (reason: the DialStatus in
lower case, once every dialled channel has ended) or, for a call followed from its ``Newchannel``,
with a ``Hangup`` of its channel before any Dial() (the dialplan refused it; reason from the cause:
21 ``rejected_number``, 20 ``chanunavail``, else ``cause_<n>``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .events import (
    CALL_ENDED,
    CALL_FAILED,
    CALL_STARTED,
    CallChange,
    CallEvent,
    ChannelCreated,
    ChannelHungUp,
    ChannelInfo,
    ContactChange,
    DialBegun,
    DialEnded,
    RegistryChange,
    ShownChannel,
    bridged_pairs,
    snapshot_changes,
    uniqueid_order,
)

REGISTERED: Final = "Registered"
REJECTED: Final = "Rejected"
# fwdres codes Kamailio writes itself: 408 on a local timeout (no answer), 0 when nothing could be sent.
CODE_TIMEOUT: Final = 408
CODE_NOT_SENT: Final = 0

# Calls: the Genesys trunk's endpoint (pjsip.conf), the two directions, Dial()'s answered status.
GENESYS_ENDPOINT: Final = "genesys"
INBOUND: Final = "inbound"
OUTBOUND: Final = "outbound"
DIRECTIONS: Final = (INBOUND, OUTBOUND)
DIAL_ANSWER: Final = "ANSWER"
ANSWERED: Final = "answered"
# Reasons of a call the dialplan ended before Dial(), by Hangup cause (extensions.conf.j2).
CAUSE_REASONS: Final = {21: "rejected_number", 20: "chanunavail"}
# Failure reasons exposed at 0 from the start (the DialStatus values the dialplan maps to a cause,
# and the refusals before Dial), so that rate() and increase() see the first one.
KNOWN_FAILURE_REASONS: Final = ("busy", "noanswer", "chanunavail", "congestion", "cancel", "rejected_number")


@dataclass(frozen=True)
class ForwardOutcome:
    """Genesys's last answer to Kamailio's mirrored REGISTER of a DN
    ("<code>|<seconds granted>|<unix time>|<bound until>").

    ``until`` is when the binding Genesys granted ends: a failed refresh keeps the previous
    grant's. Without it (an older Kamailio config), a 2xx is bound for its grant from its time."""

    code: int
    expires: int
    time: int
    until: int | None = None

    @property
    def success(self) -> bool:
        return 200 <= self.code < 300

    def bound(self, now: float) -> bool:
        """Granted by Genesys and not yet lapsed."""
        if self.until is not None:
            return self.until > now
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


@dataclass
class Call:
    """One call between an agent and Genesys, from its first event seen to its end."""

    key: str  # Uniqueid of the channel the call came in on (its Linkedid)
    direction: str
    dn: str
    number: str  # the other party: Genesys's calling number (inbound), the dialled number (outbound)
    channels: set[str]  # Uniqueids: the caller's, and those Dial() created
    watched: bool  # followed from its Newchannel with no gap since: a Hangup before Dial() is a refusal
    dialled: bool = False
    ringing: set[str] = field(default_factory=set)  # dialled channels without their DialEnd yet
    outcome: str | None = None  # ANSWERED, or the failure reason

    @property
    def in_progress(self) -> bool:
        return self.outcome == ANSWERED

    def change(self, event: str, reason: str = "") -> CallChange:
        return CallChange(event, self.key, self.direction, self.dn, self.number, reason)


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
        self.attempts: Counter[str] = Counter()
        self.ami_connected = False
        self.ami_reconnects = 0
        self.synced = False
        self.kamailio_reachable: bool | None = None
        # static mode: whether Genesys answers the monitor's OPTIONS (None: not probed, or no answer yet)
        self.genesys_answering: bool | None = None
        self._forwarded_baseline = False
        self._registrations_baseline = False
        self.calls: dict[str, Call] = {}
        self.call_attempts: Counter[str] = Counter()
        self.call_failures: Counter[tuple[str, str]] = Counter()

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
        if change.status in (REGISTERED, REJECTED) and count:
            self.attempts["static"] += 1
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
            if new in (REGISTERED, REJECTED) and self._registrations_baseline:
                self.attempts["static"] += 1
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
                self.attempts["kamailio"] += 1
                reason = outcome.failure_reason
                if reason is not None:
                    self.failures[reason] += 1
        self._forwarded_baseline = True
        self.forwarded = dict(snapshot)
        return changed

    # ---------------------------------------------------------------- calls

    def is_agent(self, endpoint: str | None) -> bool:
        """A DN's endpoint: a configured DN (any endpoint but Genesys's when no DN is configured)."""
        if endpoint is None or endpoint == GENESYS_ENDPOINT:
            return False
        return endpoint in self.dns if self.dns else True

    def _start_call(self, caller: ChannelInfo, *, watched: bool, count: bool) -> Call | None:
        """Follow a call that came in on ``caller``; None when it is neither Genesys's nor an agent's."""
        endpoint = caller.endpoint
        if endpoint == GENESYS_ENDPOINT:
            call = Call(caller.uniqueid, INBOUND, caller.exten, caller.caller_number, {caller.uniqueid}, watched)
        elif endpoint is not None and self.is_agent(endpoint):
            call = Call(caller.uniqueid, OUTBOUND, endpoint, caller.exten, {caller.uniqueid}, watched)
        else:
            return None
        self.calls[call.key] = call
        if count:
            self.call_attempts[call.direction] += 1
        return call

    def _fail(self, call: Call, reason: str, count: bool) -> list[CallChange]:
        call.outcome = reason
        if count:
            self.call_failures[(call.direction, reason)] += 1
        return [call.change(CALL_FAILED, reason)]

    def apply_call_event(self, event: CallEvent, *, count: bool = True) -> list[CallChange]:
        """Apply Newchannel/DialBegin/DialEnd/Hangup; the calls that started, ended or failed.

        ``count=False`` re-applies an event already applied (and counted) once, after a sync.
        """
        if isinstance(event, ChannelCreated):
            if event.channel.originates and event.channel.uniqueid not in self.calls:
                self._start_call(event.channel, watched=True, count=count)
            return []
        if isinstance(event, ChannelHungUp):
            return self._hung_up(event, count)
        return self._dialled(event, count)

    def _dialled(self, event: DialBegun | DialEnded, count: bool) -> list[CallChange]:
        call = self.calls.get(event.caller.uniqueid) or self._start_call(event.caller, watched=False, count=count)
        if call is None:
            return []
        dest = event.dest
        call.dialled = True
        call.channels.add(dest.uniqueid)
        if call.direction == INBOUND and dest.endpoint:
            call.dn = dest.endpoint
        if isinstance(event, DialBegun):
            if call.outcome is None:
                call.ringing.add(dest.uniqueid)
            return []
        call.ringing.discard(dest.uniqueid)
        if call.outcome is not None:  # decided: another dialled channel's end, or a replay
            return []
        if event.status == DIAL_ANSWER:
            call.outcome = ANSWERED
            call.channels = {call.key, dest.uniqueid}
            return [call.change(CALL_STARTED)]
        if call.ringing:  # another dialled channel may still answer
            return []
        return self._fail(call, event.status.lower(), count)

    def _hung_up(self, event: ChannelHungUp, count: bool) -> list[CallChange]:
        uniqueid = event.channel.uniqueid
        call = self.calls.get(uniqueid)
        if call is None:  # a dialled channel: ends its call if answered, else its caller's Hangup decides
            call = next((c for c in self.calls.values() if c.in_progress and uniqueid in c.channels), None)
            if call is None:
                return []
        del self.calls[call.key]
        if call.in_progress:
            return [call.change(CALL_ENDED)]
        if call.outcome is None and not call.dialled and call.watched:
            reason = CAUSE_REASONS.get(event.cause, f"cause_{event.cause}")
            return self._fail(call, reason, count)
        return []

    def calls_lost_sight(self) -> None:
        """The AMI connection is gone: events will be missed, so no Hangup before Dial() can be trusted."""
        for call in self.calls.values():
            if not call.in_progress:
                call.watched = False

    def _bridged_call(self, caller: ChannelInfo, dest: ChannelInfo) -> Call | None:
        if caller.endpoint == GENESYS_ENDPOINT and self.is_agent(dest.endpoint):
            direction, dn, number = INBOUND, dest.endpoint or "", caller.caller_number
        elif self.is_agent(caller.endpoint) and dest.endpoint == GENESYS_ENDPOINT:
            direction, dn, number = OUTBOUND, caller.endpoint or "", caller.exten
        else:
            return None
        channels = {caller.uniqueid, dest.uniqueid}
        return Call(caller.uniqueid, direction, dn, number, channels, watched=False, dialled=True, outcome=ANSWERED)

    def replace_calls(self, shown: Iterable[ShownChannel], buffered: Iterable[CallEvent] = ()) -> list[CallChange]:
        """Take CoreShowChannels' view as the truth, then re-apply the events seen while it was asked.

        In progress: every bridge of an agent's channel and Genesys's. Calls not answered yet are kept
        while their channel exists. Returns the calls the sync revealed as started or ended (what the
        events had not told); nothing is counted.
        """
        channels = list(shown)
        before = {key: call for key, call in self.calls.items() if call.in_progress}
        alive = {item.channel.uniqueid for item in channels}
        calls = {key: call for key, call in self.calls.items() if not call.in_progress and key in alive}
        for caller, dest in bridged_pairs(channels):
            call = self._bridged_call(caller, dest)
            if call is not None:
                calls[call.key] = before.get(call.key, call)
        self.calls = calls
        for event in buffered:
            self.apply_call_event(event, count=False)
        after = {key: call for key, call in self.calls.items() if call.in_progress}
        return [
            *(before[key].change(CALL_ENDED) for key in sorted(set(before) - set(after), key=uniqueid_order)),
            *(after[key].change(CALL_STARTED) for key in sorted(set(after) - set(before), key=uniqueid_order)),
        ]

    def calls_in_progress(self) -> list[Call]:
        return [call for call in self.calls.values() if call.in_progress]

    def calls_by_direction(self) -> dict[str, int]:
        counts = Counter(call.direction for call in self.calls_in_progress())
        return {direction: counts[direction] for direction in DIRECTIONS}

    def calls_by_dn(self) -> dict[str, int]:
        """Calls in progress per DN: every configured DN, and any other DN with a call."""
        counts = Counter(call.dn for call in self.calls_in_progress())
        return {dn: counts[dn] for dn in sorted(set(self.dns) | set(counts))}

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
        """The /state document: per-DN booleans, the three counts, and the calls in progress."""
        return {
            "mode": self.mode,
            "time": now,
            "ami_connected": self.ami_connected,
            "synced": self.synced,
            "kamailio_reachable": self.kamailio_reachable,
            "genesys_answering": self.genesys_answering,
            "counts": self.counts(now).as_dict(),
            "dns": self.per_dn(now),
            "calls": {
                "in_progress": len(self.calls_in_progress()),
                "by_direction": self.calls_by_direction(),
                "by_dn": self.calls_by_dn(),
            },
        }
