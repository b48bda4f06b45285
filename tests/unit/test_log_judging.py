"""What fails a test in a daemon's log (tests/lab/logs.py): every error line, and Kamailio's
keep-alive report of a client gone without a WebSocket close only as the whole pair."""

from __future__ import annotations

from lab.logs import error_lines

_WARNING = " 8(18) WARNING: websocket [ws_frame.c:251]: encode_and_send_ws_frame(): TCP/TLS connection get failed"
_ERROR = " 8(18) ERROR: websocket [ws_frame.c:770]: ping_pong(): sending keepalive"


def test_every_error_spelling_fails() -> None:
    log = "\n".join(
        [
            " 3(12) ERROR: tm [t_fwd.c:1]: t_forward_nonack(): failure",
            "[2026-12-07 22:00:00] ERROR[77] res_pjsip.c: nothing",
            "2026/12/07 22:00:00 [error] 31#31: *1 upstream failed",
            "2026/12/07 22:00:00 [emerg] 31#31: bad config",
            " 3(12) CRITICAL: <core> [core/mem/q_malloc.c:1]: out of memory",
            " 3(12) NOTICE: <script>: fine",
        ]
    )
    assert len(error_lines(log)) == 5


def test_the_peer_gone_pair_from_one_process_is_accepted() -> None:
    assert error_lines(f"{_WARNING}\n{_ERROR}\n") == []
    # docker compose's line prefix and erase sequences do not change the judgement
    assert error_lines(f"kamailio-1  | \x1b[2K{_WARNING}\nkamailio-1  | \x1b[2K{_ERROR}") == []


def test_the_keepalive_on_a_closing_connection_is_accepted_as_a_pair() -> None:
    closing = " 8(18) WARNING: websocket [ws_frame.c:153]: encode_and_send_ws_frame(): sending on closing connection"
    assert error_lines("\n".join([closing, _ERROR] * 5)) == []  # once a second until the record goes
    assert error_lines(f"{closing}\n{closing}\n{_ERROR}\n{_ERROR}") == [_ERROR]  # whole pairs only


def test_the_keepalive_error_alone_fails() -> None:
    assert error_lines(_ERROR) == [_ERROR]
    # the warning came from another process: the keep-alive failed on a connection it had
    other = _WARNING.replace("8(18)", "9(19)")
    assert error_lines(f"{other}\n{_ERROR}") == [_ERROR]
    # something else came between them in that process
    between = " 8(18) INFO: <script>: something"
    assert error_lines(f"{_WARNING}\n{between}\n{_ERROR}") == [_ERROR]


def test_an_accepted_pair_does_not_hide_the_next_error() -> None:
    again = " 8(18) ERROR: websocket [ws_frame.c:770]: ping_pong(): sending keepalive"
    assert error_lines(f"{_WARNING}\n{_ERROR}\n{again}") == [again]


def test_the_forcibly_closed_pair_is_accepted_whole_only() -> None:
    warning = " 8(18) WARNING: websocket [ws_frame.c:818]: ws_keepalive(): forcibly closing connection"
    error = " 8(18) ERROR: websocket [ws_conn.c:392]: wsconn_close_now(): getting TCP/TLS connection"
    assert error_lines(f"{warning}\n{error}\n{warning}\n{error}") == []
    assert error_lines(error) == [error]
    assert error_lines(f"{_WARNING}\n{error}") == [error]  # the other pair's warning does not excuse it
