"""The captured AMI traffic (fixtures/), read the way panoramisk reads it at run time."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from panoramisk.actions import Action
from panoramisk.message import Message
from registration_monitor.events import CallChange, ContactChange, RegistryChange, parse_call_event, parse_change
from registration_monitor.kamailio import parse_reply
from registration_monitor.state import ForwardOutcome, MonitorState

HERE: Final = Path(__file__).resolve().parent
FIXTURES: Final = HERE / "fixtures"

EOL: Final = "\r\n"
MANIFEST: Final[dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
AMI_FIXTURES: Final = sorted(path.name for path in FIXTURES.glob("*.ami"))
# Calls (capture_calls.py): their own directory and manifest; names are "calls/NN-name.ami".
CALLS: Final = "calls"
CALLS_MANIFEST: Final[dict[str, Any]] = json.loads((FIXTURES / CALLS / "manifest.json").read_text(encoding="utf-8"))
CALL_FIXTURES: Final = sorted(f"{CALLS}/{path.name}" for path in (FIXTURES / CALLS).glob("*.ami"))
HTABLE_FIXTURES: Final = sorted(path.name for path in FIXTURES.glob("*.htable.json"))


@dataclass(frozen=True)
class AmiFixture:
    """One captured phase: the raw text, cut into messages exactly as panoramisk's AMIProtocol does."""

    name: str
    raw: str

    @property
    def blocks(self) -> list[str]:
        """Non-empty raw messages (the greeting line stays glued to the first one, as on the wire)."""
        return [block.strip() for block in self.raw.split(EOL + EOL) if block.strip()]

    @property
    def messages(self) -> list[Message]:
        parsed = (Message.from_line(block) for block in self.blocks)
        return [message for message in parsed if message is not None]

    @property
    def events(self) -> list[Message]:
        return [message for message in self.messages if "Event" in message and "ActionID" not in message]

    @property
    def phase(self) -> dict[str, Any]:
        directory, _, file = self.name.rpartition("/")
        manifest = CALLS_MANIFEST if directory == CALLS else MANIFEST
        return next(phase for phase in manifest["phases"] if phase["file"] == file)

    def action_ids(self) -> dict[str, str]:
        """Action name -> the ActionID it was sent with (manifest order = order of the responses)."""
        sent = [action for action in self.phase["sent"] if not action.startswith(("Login", "CLI"))]
        seen: list[str] = []
        for message in self.messages:
            if "Response" in message and message["ActionID"] not in seen:
                seen.append(message["ActionID"])
        if len(seen) != len(sent):
            raise AssertionError(f"{self.name}: {len(sent)} action(s) sent, {len(seen)} answered")
        return dict(zip(sent, seen, strict=True))

    def action_blocks(self, action: str) -> list[str]:
        """The raw messages answering ``action``."""
        action_id = self.action_ids()[action]
        return [block for block in self.blocks if f"ActionID: {action_id}" in block.split(EOL)]

    def response(self, action: str) -> Any:
        """What panoramisk resolves the action's future with (a Message, or a list for an event list)."""
        action_id = self.action_ids()[action]

        async def feed() -> Any:
            pending = Action({"Action": action, "ActionID": action_id})
            for message in self.messages:
                if message.get("ActionID") == action_id:
                    pending.add_message(message)
                if pending.future.done():
                    return pending.future.result()
            raise AssertionError(f"{self.name}: {action} never completed")

        return asyncio.run(feed())


@cache
def ami_fixture(name: str) -> AmiFixture:
    return AmiFixture(name, (FIXTURES / name).read_bytes().decode("utf-8"))


def htable_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture_time(name: str) -> int:
    """The unix time Kamailio stamped on the newest outcome of an htable fixture."""
    stamps = [
        int(item["value"].rsplit("|", 1)[1]) for bucket in htable_fixture(name)["result"] for item in bucket["slot"]
    ]
    return max(stamps)


def feed(state: MonitorState, name: str) -> list[ContactChange | RegistryChange]:
    """Apply a fixture's events the way the AMI client does."""
    applied: list[ContactChange | RegistryChange] = []
    for event in ami_fixture(name).events:
        change = parse_change(event)
        if isinstance(change, ContactChange):
            state.apply_contact(change)
        elif isinstance(change, RegistryChange):
            state.apply_registry(change)
        if change is not None:
            applied.append(change)
    return applied


def forwarded(name: str) -> dict[str, ForwardOutcome]:
    return parse_reply(htable_fixture(name))


def feed_calls(state: MonitorState, name: str, *, count: bool = True) -> list[CallChange]:
    """Apply a fixture's call events the way the AMI client does; the call changes they made."""
    changes: list[CallChange] = []
    for event in ami_fixture(name).events:
        call_event = parse_call_event(event)
        if call_event is not None:
            changes += state.apply_call_event(call_event, count=count)
    return changes
