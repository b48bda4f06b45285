"""Asterisk AMI messages -> state changes, and the JSON line logged for each registration event.

Shapes are Asterisk 22's, as captured in tests/unit/monitor/fixtures:

- ``ContactStatus`` (a client's contact at Asterisk): ``AOR``, ``URI``, ``ContactStatus``. A new
  contact shows up as ``NonQualified`` (or ``Created``/``Reachable`` with qualify), a removed or
  expired one as ``Removed``. A refresh publishes nothing. With ``remove_existing`` the new
  contact's event comes *before* the old contact's ``Removed``: contacts are kept per URI.
- ``Registry`` (a static registration at Genesys): ``Username`` (client URI), ``Domain`` (server
  URI), ``Status`` (``Registered``, ``Unregistered``, ``Rejected``). No SIP code is given.
- ``PJSIPShowContacts``: ``ContactList`` events (``ObjectName`` ``<aor>;@<hash>``, ``Uri``,
  ``Status``). With no contact at all Asterisk answers ``Response: Error`` / ``No Contacts found``.
- ``PJSIPShowAors``: ``AorList`` events; ``Contacts`` is ``<aor>/<uri>`` comma separated.
- ``PJSIPShowRegistrationsOutbound``: ``OutboundRegistrationDetail`` events (``ClientUri``, ``Status``).
- ``Reload`` (``Module: res_pjsip.so``) after ``module reload``: registrations may have been
  added or removed, and a removed one gets no event of its own.

Calls (tests/unit/monitor/fixtures/calls; they need ``read=call`` for the monitor's AMI user):

- ``Newchannel``: ``Channel`` (``PJSIP/<endpoint>-<8 hex>``), ``Uniqueid``, ``Linkedid``, ``Exten``,
  ``CallerIDNum``. The channel a call came in on has ``Uniqueid == Linkedid``; a channel Dial()
  creates inherits the caller's ``Linkedid`` (and starts in ``Exten: s``).
- ``DialBegin`` / ``DialEnd``: the caller's fields, plus ``DestChannel``, ``DestUniqueid``,
  ``DestLinkedid`` ...; ``DialEnd`` has ``DialStatus`` (``ANSWER``, ``BUSY``, ``CANCEL``, ...).
  A call the dialplan ends before Dial() (number refused, DN without contact) has neither.
- ``Hangup``: ``Uniqueid``, ``Linkedid``, ``Cause`` (Q.850; the dialplan's explicit cause for a
  call it refused). One per channel: an answered call ends with two, in no fixed order.
- ``CoreShowChannels``: ``CoreShowChannel`` events (``Channel``, ``Uniqueid``, ``Linkedid``,
  ``Exten``, ``CallerIDNum``, ``Application`` ``Dial``/``AppDial``, ``BridgeId``), then
  ``CoreShowChannelsComplete``; an empty list is a ``Success`` with ``ListItems: 0``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

_DN_FROM_AOR: Final = re.compile(r"^(?:sips?:)?(?P<dn>[^@;/\s]+)")
_DN_FROM_URI: Final = re.compile(r"^sips?:(?P<dn>[^@;:]+)@")
# chan_pjsip names a channel <technology>/<endpoint>-<sequence, 8 hex digits>.
_PJSIP_CHANNEL: Final = re.compile(r"^PJSIP/(?P<endpoint>.+)-[0-9a-fA-F]{8,}$")

# Events the monitor subscribes to.
CONTACT_EVENT: Final = "ContactStatus"
REGISTRY_EVENT: Final = "Registry"
NEW_CHANNEL_EVENT: Final = "Newchannel"
DIAL_BEGIN_EVENT: Final = "DialBegin"
DIAL_END_EVENT: Final = "DialEnd"
HANGUP_EVENT: Final = "Hangup"
CALL_EVENTS: Final = (NEW_CHANNEL_EVENT, DIAL_BEGIN_EVENT, DIAL_END_EVENT, HANGUP_EVENT)
WATCHED: Final = (CONTACT_EVENT, REGISTRY_EVENT, *CALL_EVENTS)
# Events that make the monitor rebuild its state from actions.
RESYNC_EVENTS: Final = ("FullyBooted", "Reload")

# ContactStatus values of a contact that no longer exists.
CONTACT_GONE: Final = frozenset({"Removed"})
NO_CONTACTS: Final = "No Contacts found"

SOURCE_ASTERISK: Final = "asterisk"
SOURCE_STATIC: Final = "genesys-static"
SOURCE_KAMAILIO: Final = "genesys-kamailio"
SOURCE_CALLS: Final = "asterisk-calls"


def header(message: Mapping[str, Any], key: str) -> str:
    """A header of an AMI message as text, case-insensitively (panoramisk messages are case-insensitive)."""
    value = message.get(key)
    if value is None:
        lowered = key.lower()
        value = next((item for name, item in message.items() if name.lower() == lowered), "")
    if isinstance(value, list):  # a repeated header: the last one wins
        value = value[-1] if value else ""
    return str(value).strip()


def dn_from_aor(aor: str) -> str | None:
    match = _DN_FROM_AOR.match(aor.strip())
    return match.group("dn") if match else None


def dn_from_uri(uri: str) -> str | None:
    """The user part of a SIP URI (None for a URI without user, e.g. a server URI); a bare DN as is."""
    uri = uri.strip().strip("<>")
    match = _DN_FROM_URI.match(uri)
    if match:
        return match.group("dn")
    if uri.startswith(("sip:", "sips:")) or "@" in uri:
        return None
    return dn_from_aor(uri)


@dataclass(frozen=True)
class RegistrationEvent:
    """One registration event, as logged on stdout: one JSON object per line."""

    time: float
    dn: str
    event: str
    contact: str
    source: str
    mode: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class ContactChange:
    """A contact of a DN at Asterisk was added/updated (present) or removed."""

    dn: str
    uri: str
    status: str

    @property
    def present(self) -> bool:
        return self.status not in CONTACT_GONE


@dataclass(frozen=True)
class RegistryChange:
    """A static registration of a DN at Genesys changed state."""

    dn: str
    status: str
    server: str


Change = ContactChange | RegistryChange


def event_name(message: Mapping[str, Any]) -> str:
    return header(message, "Event")


def parse_change(message: Mapping[str, Any]) -> Change | None:
    """The state change an AMI event carries, or None when it is not about a DN's registration."""
    name = event_name(message)
    if name == CONTACT_EVENT:
        dn = dn_from_aor(header(message, "AOR"))
        uri = header(message, "URI")
        if dn is None or not uri:
            return None
        return ContactChange(dn=dn, uri=uri, status=header(message, "ContactStatus") or "Unknown")
    if name == REGISTRY_EVENT:
        dn = dn_from_uri(header(message, "Username"))
        if dn is None:
            return None
        return RegistryChange(dn=dn, status=header(message, "Status") or "Unknown", server=header(message, "Domain"))
    return None


def to_log_event(
    change: Change, mode: str, now: float | None = None, *, source: str | None = None
) -> RegistrationEvent:
    stamp = time.time() if now is None else now
    if isinstance(change, ContactChange):
        return RegistrationEvent(stamp, change.dn, change.status, change.uri, source or SOURCE_ASTERISK, mode)
    return RegistrationEvent(stamp, change.dn, change.status, change.server, source or SOURCE_STATIC, mode)


def parse(fields: Mapping[str, Any], mode: str, now: float | None = None) -> RegistrationEvent | None:
    """Map an AMI event to the JSON-line event, or None if it is not about a DN."""
    change = parse_change(fields)
    return None if change is None else to_log_event(change, mode, now)


# --------------------------------------------------------------------------- calls


def endpoint_of(channel: str) -> str | None:
    """The PJSIP endpoint of a channel name (``PJSIP/genesys-0000000a`` -> ``genesys``); None for another kind."""
    match = _PJSIP_CHANNEL.match(channel.strip())
    return match.group("endpoint") if match else None


@dataclass(frozen=True)
class ChannelInfo:
    """A channel as an AMI call event (or a CoreShowChannel entry) describes it."""

    name: str
    uniqueid: str
    linkedid: str
    exten: str = ""
    caller_number: str = ""

    @property
    def endpoint(self) -> str | None:
        return endpoint_of(self.name)

    @property
    def originates(self) -> bool:
        """The channel a call came in on (a channel Dial() creates carries its caller's Linkedid)."""
        return bool(self.uniqueid) and self.uniqueid == self.linkedid


@dataclass(frozen=True)
class ChannelCreated:
    """Newchannel."""

    channel: ChannelInfo


@dataclass(frozen=True)
class DialBegun:
    """DialBegin: ``caller`` runs Dial(), ``dest`` is the channel it created."""

    caller: ChannelInfo
    dest: ChannelInfo


@dataclass(frozen=True)
class DialEnded:
    """DialEnd with its DialStatus (ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL, ...)."""

    caller: ChannelInfo
    dest: ChannelInfo
    status: str


@dataclass(frozen=True)
class ChannelHungUp:
    """Hangup of one channel, with its Q.850 cause (0 when absent)."""

    channel: ChannelInfo
    cause: int


CallEvent = ChannelCreated | DialBegun | DialEnded | ChannelHungUp


def _channel(message: Mapping[str, Any], prefix: str = "") -> ChannelInfo:
    name = "DestChannel" if prefix else "Channel"
    return ChannelInfo(
        name=header(message, name),
        uniqueid=header(message, f"{prefix}Uniqueid"),
        linkedid=header(message, f"{prefix}Linkedid"),
        exten=header(message, f"{prefix}Exten"),
        caller_number=header(message, f"{prefix}CallerIDNum"),
    )


def parse_call_event(message: Mapping[str, Any]) -> CallEvent | None:
    """The call event an AMI event carries, or None (another event, or one without a channel id)."""
    name = event_name(message)
    channel = _channel(message)
    if name not in CALL_EVENTS or not channel.uniqueid:
        return None
    if name == NEW_CHANNEL_EVENT:
        return ChannelCreated(channel)
    if name == HANGUP_EVENT:
        cause = header(message, "Cause")
        return ChannelHungUp(channel, int(cause) if cause.isdigit() else 0)
    dest = _channel(message, "Dest")
    if not dest.uniqueid:
        return None
    if name == DIAL_BEGIN_EVENT:
        return DialBegun(channel, dest)
    return DialEnded(channel, dest, header(message, "DialStatus").upper() or "UNKNOWN")


@dataclass(frozen=True)
class CallLogEvent:
    """One call event, as logged on stdout: a call started (answered), ended, or failed to set up."""

    time: float
    dn: str
    event: str  # CallStarted, CallEnded, CallFailed
    direction: str  # inbound (Genesys -> agent), outbound (agent -> Genesys)
    reason: str  # CallFailed: the failures counter's reason label; else ""
    number: str  # the other party: Genesys's calling number (inbound), the dialled number (outbound)
    call: str  # the Uniqueid (= Linkedid) of the channel the call came in on
    source: str
    mode: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


LogEvent = RegistrationEvent | CallLogEvent

CALL_STARTED: Final = "CallStarted"
CALL_ENDED: Final = "CallEnded"
CALL_FAILED: Final = "CallFailed"


@dataclass(frozen=True)
class CallChange:
    """What the state saw happen to a call: started (answered), ended, or failed to set up (with a reason)."""

    event: str
    call: str
    direction: str
    dn: str
    number: str
    reason: str = ""

    def log_event(self, mode: str, now: float | None = None, *, source: str = SOURCE_CALLS) -> CallLogEvent:
        stamp = time.time() if now is None else now
        return CallLogEvent(
            stamp, self.dn, self.event, self.direction, self.reason, self.number, self.call, source, mode
        )


# --------------------------------------------------------------------------- action responses


class ActionError(RuntimeError):
    """An action was answered with an error (unknown command before PJSIP is loaded, permission denied...)."""


def _messages(response: Any) -> list[Mapping[str, Any]]:
    """panoramisk resolves a list action with a list of messages and a plain error with one message."""
    if isinstance(response, Mapping):
        return [response]
    if isinstance(response, Sequence) and not isinstance(response, str):
        return [message for message in response if isinstance(message, Mapping)]
    raise ActionError(f"unexpected action response: {type(response).__name__}")


def _check(messages: Sequence[Mapping[str, Any]], action: str, *, empty_error: str | None = None) -> bool:
    """False when the response says "nothing to list"; ActionError on any other error."""
    if not messages:
        raise ActionError(f"{action}: no response")
    first = messages[0]
    answer = header(first, "Response")
    if answer and answer not in ("Success", "Follows"):
        text = header(first, "Message")
        if empty_error is not None and text == empty_error:
            return False
        raise ActionError(f"{action}: {answer}: {text}")
    return True


def contacts_from_show_contacts(response: Any) -> dict[str, dict[str, str]]:
    """PJSIPShowContacts -> {dn: {uri: status}}."""
    messages = _messages(response)
    contacts: dict[str, dict[str, str]] = {}
    if not _check(messages, "PJSIPShowContacts", empty_error=NO_CONTACTS):
        return contacts
    for message in messages:
        if event_name(message) != "ContactList":
            continue
        dn = dn_from_aor(header(message, "ObjectName").split(";@", 1)[0]) or dn_from_aor(header(message, "Endpoint"))
        uri = header(message, "Uri")
        if dn and uri:
            contacts.setdefault(dn, {})[uri] = header(message, "Status") or "Unknown"
    return contacts


def contacts_from_show_aors(response: Any) -> dict[str, dict[str, str]]:
    """PJSIPShowAors -> {dn: {uri: "Unknown"}} (AorList names the contacts, not their status)."""
    messages = _messages(response)
    _check(messages, "PJSIPShowAors")
    contacts: dict[str, dict[str, str]] = {}
    for message in messages:
        if event_name(message) != "AorList":
            continue
        dn = dn_from_aor(header(message, "ObjectName"))
        for item in filter(None, (part.strip() for part in header(message, "Contacts").split(","))):
            aor, _, uri = item.partition("/")
            if dn and uri and aor == header(message, "ObjectName"):
                contacts.setdefault(dn, {})[uri] = "Unknown"
    return contacts


def _outbound_details(response: Any) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(DN, OutboundRegistrationDetail) of a PJSIPShowRegistrationsOutbound answer (DN = the client URI's user)."""
    messages = _messages(response)
    _check(messages, "PJSIPShowRegistrationsOutbound")
    for message in messages:
        if event_name(message) == "OutboundRegistrationDetail" and (dn := dn_from_uri(header(message, "ClientUri"))):
            yield dn, message


def registrations_from_show_outbound(response: Any) -> dict[str, str]:
    """PJSIPShowRegistrationsOutbound -> {dn: status}."""
    return {dn: header(message, "Status") or "Unknown" for dn, message in _outbound_details(response)}


def registration_objects_from_show_outbound(response: Any) -> dict[str, str]:
    """PJSIPShowRegistrationsOutbound -> {dn: the registration's object name} (for PJSIPRegister)."""
    return {dn: name for dn, message in _outbound_details(response) if (name := header(message, "ObjectName"))}


def snapshot_changes(
    before: Mapping[str, Mapping[str, str]], after: Mapping[str, Mapping[str, str]]
) -> Iterable[ContactChange]:
    """The contact changes a snapshot reveals (what happened while no event could be seen)."""
    for dn in sorted(set(before) | set(after)):
        old, new = before.get(dn, {}), after.get(dn, {})
        for uri in sorted(set(old) - set(new)):
            yield ContactChange(dn, uri, "Removed")
        for uri in sorted(set(new) - set(old)):
            yield ContactChange(dn, uri, new[uri])


@dataclass(frozen=True)
class ShownChannel:
    """One CoreShowChannel entry: the channel, the application it runs and its bridge ("" if none)."""

    channel: ChannelInfo
    application: str
    bridge: str


def channels_from_show_channels(response: Any) -> list[ShownChannel]:
    """CoreShowChannels -> every channel Asterisk has (an empty list is a Success with no entry)."""
    messages = _messages(response)
    _check(messages, "CoreShowChannels")
    return [
        ShownChannel(_channel(message), header(message, "Application"), header(message, "BridgeId"))
        for message in messages
        if event_name(message) == "CoreShowChannel" and header(message, "Uniqueid")
    ]


def bridged_pairs(channels: Iterable[ShownChannel]) -> list[tuple[ChannelInfo, ChannelInfo]]:
    """(caller, dialled) of every bridge of exactly two channels.

    The caller is the channel the call came in on (Uniqueid == Linkedid); failing that, the one that
    runs Dial() (the dialled one runs AppDial); failing that, the older one.
    """
    bridges: dict[str, list[ShownChannel]] = {}
    for shown in channels:
        if shown.bridge:
            bridges.setdefault(shown.bridge, []).append(shown)
    pairs: list[tuple[ChannelInfo, ChannelInfo]] = []
    for members in bridges.values():
        if len(members) != 2:  # two parties: a call between an agent and Genesys
            continue
        first, second = sorted(members, key=_caller_rank)
        pairs.append((first.channel, second.channel))
    return pairs


def uniqueid_order(uniqueid: str) -> tuple[int, ...]:
    """Sort key of a Uniqueid, "<unix time>.<sequence>" compared as numbers (older channel first)."""
    parts = uniqueid.split(".")
    return tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else ()


def _caller_rank(shown: ShownChannel) -> tuple[int, int, tuple[int, ...]]:
    """Sort key: the caller first."""
    caller = shown.channel
    return (0 if caller.originates else 1, 0 if shown.application == "Dial" else 1, uniqueid_order(caller.uniqueid))
