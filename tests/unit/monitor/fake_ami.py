"""An AMI server on 127.0.0.1 that answers with the text Asterisk 22 sent in the captures.

Only the ActionID of a captured answer is changed (to the one the client sent). Actions without a
captured answer get Asterisk's answer to an unknown action.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Final

from .captured import EOL, ami_fixture

GREETING: Final = "Asterisk Call Manager/"
UNKNOWN_ACTION: Final = "Response: Error\r\nActionID: {id}\r\nMessage: Invalid/unknown command\r\n\r\n"
PONG: Final = "Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 0.000000\r\n\r\n"
# Answers given unless a test sets its own in ``answers``: no call in progress.
DEFAULT_ANSWERS: Final = {"CoreShowChannels": "calls/07-sync-idle.ami"}


def _with_action_id(block: str, action_id: str) -> str:
    lines = [f"ActionID: {action_id}" if line.startswith("ActionID: ") else line for line in block.split(EOL)]
    return EOL.join(lines) + EOL + EOL


class FakeAmi:
    def __init__(self) -> None:
        self.login_fixture = "02-login.ami"
        # action -> the captured phase whose answer to that action is replayed
        self.answers: dict[str, str] = {}
        self.received: list[dict[str, str]] = []
        self.connections = 0
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def actions(self) -> list[str]:
        return [fields.get("Action", "") for fields in self.received]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writer = writer
        first = ami_fixture(self.login_fixture).blocks[0]
        writer.write((first.split(EOL, 1)[0] + EOL).encode())  # the greeting line, sent on connect
        buffer = b""
        try:
            while data := await reader.read(65536):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    block, _, buffer = buffer.partition(b"\r\n\r\n")
                    fields = dict(
                        line.split(": ", 1) for line in block.decode().split(EOL) if ": " in line
                    )  # fmt: skip
                    self.received.append(fields)
                    if not await self._answer(fields, writer):
                        return
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _answer(self, fields: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        """Write the answer; False when the session ends (a refused login)."""
        action, action_id = fields.get("Action", ""), fields.get("ActionID", "")
        if action.lower() == "login":
            blocks = ami_fixture(self.login_fixture).blocks
            blocks[0] = blocks[0].split(EOL, 1)[1]  # without the greeting line
            writer.write("".join(_with_action_id(block, action_id) for block in blocks).encode())
            await writer.drain()
            return "Authentication failed" not in blocks[0]
        if action.lower() == "ping":
            writer.write(PONG.format(id=action_id).encode())
        elif action in self.answers or action in DEFAULT_ANSWERS:
            blocks = ami_fixture(self.answers.get(action) or DEFAULT_ANSWERS[action]).action_blocks(action)
            writer.write("".join(_with_action_id(block, action_id) for block in blocks).encode())
        else:
            writer.write(UNKNOWN_ACTION.format(id=action_id).encode())
        await writer.drain()
        return True

    async def push(self, fixture: str) -> None:
        """Send the events of a captured phase (not the answers to actions) to the connected client."""
        assert self._writer is not None
        blocks = [block for block in ami_fixture(fixture).blocks if "ActionID: " not in block]
        self._writer.write("".join(block + EOL + EOL for block in blocks).encode())
        await self._writer.drain()

    async def restart(self) -> None:
        """What a client sees when Asterisk stops: the captured Shutdown event, then the connection closes."""
        await self.push("15-shutdown.ami")
        assert self._writer is not None
        self._writer.close()


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
