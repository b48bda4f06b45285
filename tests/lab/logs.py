"""Which lines of a daemon's log fail a test: anything at error level or worse, with one exception.

The exception is Kamailio 6.1's websocket module reporting that a client left without a closing
handshake (a killed process, a lost network): nginx then closes the upstream TCP connection, the
core forgets it before any module hears of it (``tcp_main.c`` emits ``tcp:closed`` after unhashing
the connection), and the WebSocket record lingers until the keep-alive timer finds its TCP
connection gone. Every way the module has to drop that record logs at error level; with PING
keep-alives it is one of the pairs below, from one process, about ``keepalive_timeout`` after the
client left. The same keep-alive ping fails, once a second until the record is dropped, on a
connection whose closing handshake is under way ("sending on closing connection": seen after a
JsSIP client un-REGISTERed and closed, in CI on 2026-12-08). A pair is accepted only whole: the
ERROR line without the WARNING just before it in the same process fails like any other (a
keep-alive that could not be sent on a live connection).
"""

from __future__ import annotations

import re
from typing import Final

# Lines a daemon logs at error level or worse (Kamailio, Asterisk, nginx spellings).
ERROR_MARKERS: Final = ("ERROR", "CRITICAL", "ALERT", "[error]", "[crit]", "[alert]", "[emerg]")

_KAMAILIO_LINE: Final = re.compile(r"\b\d+\((?P<pid>\d+)\) (?P<level>[A-Z]+): (?P<rest>.*)$")
# (the WARNING just before, the ERROR): the keep-alive found the TCP connection gone when it
# pinged, or when it gave up waiting for the pong of an earlier ping.
_PEER_GONE_PAIRS: Final = (
    (
        re.compile(
            r"^WARNING: websocket \[ws_frame\.c:\d+\]: encode_and_send_ws_frame\(\): "
            r"(TCP/TLS connection get failed|sending on closing connection)$"
        ),
        re.compile(r"^ERROR: websocket \[ws_frame\.c:\d+\]: ping_pong\(\): sending keepalive$"),
    ),
    (
        re.compile(r"^WARNING: websocket \[ws_frame\.c:\d+\]: ws_keepalive\(\): forcibly closing connection$"),
        re.compile(r"^ERROR: websocket \[ws_conn\.c:\d+\]: wsconn_close_now\(\): getting TCP/TLS connection$"),
    ),
)


def _is_error(line: str) -> bool:
    return any(marker in line for marker in ERROR_MARKERS)


def error_lines(text: str) -> list[str]:
    """Lines a daemon logged at ERROR (or worse) level, nginx's [error] included, less the one
    Kamailio keep-alive report of a client gone without a WebSocket close (module docstring)."""
    found: list[str] = []
    previous_by_pid: dict[str, str] = {}
    for line in text.splitlines():
        parsed = _KAMAILIO_LINE.search(line)
        if parsed is None:
            if _is_error(line):
                found.append(line)
            continue
        pid, this = parsed["pid"], f"{parsed['level']}: {parsed['rest'].rstrip()}"
        before = previous_by_pid.get(pid, "")
        previous_by_pid[pid] = this
        if any(error.match(this) and warning.match(before) for warning, error in _PEER_GONE_PAIRS):
            continue
        if _is_error(line):
            found.append(line)
    return found
