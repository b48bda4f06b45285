"""The switch's drain (roles/gateway/files/gateway_state.py): what it reads from the daemons'
real output, and the order in which it closes connections (idle at once, on a call when the
call ends, cut only after the wait or with force)."""

from __future__ import annotations

from typing import Any

from .gateway_state_module import load

gs = load()

# Captured on the lab (Asterisk 22, Kamailio 6.1) with two agents on calls.
CHANNELS = (
    "PJSIP/1002-00000015!from-webrtc!!1!Up!AppDial!(Outgoing Line)!1002!!!3!0!9c94!1796318303.21\n"
    "PJSIP/genesys-00000014!from-genesys!1002!3!Up!Dial!PJSIP/1002,30!5551000!!!3!0!9c94!1796318303.20\n"
    "PJSIP/1003-0000001a!from-webrtc!5551300!1!Up!Dial!PJSIP/5551300@genesys!1003!!!3!0!ab12!1796318303.25\n"
)
WS_DUMP = {
    "connections": [
        "153: ws:127.0.0.1:43088 -> ws:127.0.0.54:8080 (state: OPEN,  last used 0s ago, sub-protocol: sip)",
        "154: ws:127.0.0.1:43098 -> ws:127.0.0.54:8080 (state: OPEN,  last used 0s ago, sub-protocol: sip)",
    ],
    "info": {"wscounter": 2, "truncated": "no"},
}
WSDN = [
    {"entry": 3800, "size": 1, "slot": [{"name": "1003@154", "value": 1, "type": "int"}]},
    {"entry": 3802, "size": 2, "slot": [{"name": "1002@153", "value": 1}, {"name": "1002@12", "value": 1}]},
]
CONTACTS = """
  Contact:  <Aor/ContactUri..............................> <Hash....> <Status> <RTT(ms)..>
==========================================================================================

  Contact:  1002/sip:rrrqe10r@127.0.0.1:40144;transport=WS cd287c013b NonQual        -nan
  Contact:  1003/sip:1f1e2aal@127.0.0.1:40154;transport=WS cd80f026e7 NonQual        -nan
  Contact:  genesys/sip:127.0.0.81:5060                    2f29cd756d NonQual        -nan
"""
SS = "0      0      127.0.0.1:40144 127.0.0.54:8088\n0      0      127.0.0.1:40160 127.0.0.54:8088\n"


def test_calls_are_counted_per_agent_and_the_genesys_trunk_is_not_an_agent() -> None:
    assert gs.parse_calls(CHANNELS) == {"1002": 1, "1003": 1}
    assert gs.parse_calls("") == {}


def test_kamailio_connections_map_to_the_dns_registered_on_them() -> None:
    assert gs.parse_ws_dump(WS_DUMP) == {153, 154}
    assert gs.parse_ws_dump(None) == set()
    assert gs.parse_wsdn(WSDN) == {154: {"1003"}, 153: {"1002"}, 12: {"1002"}}


def test_asterisk_websocket_contacts_map_to_nginx_upstream_sockets() -> None:
    assert gs.parse_ws_contacts(CONTACTS) == {("127.0.0.1", 40144): {"1002"}, ("127.0.0.1", 40154): {"1003"}}
    # 40160 is a connection with no registered client: it is closed like an idle one.
    assert gs.parse_ss(SS) == {("127.0.0.1", 40144), ("127.0.0.1", 40160)}


class ScriptedPath:
    """The previous path as the drain sees it: connections, and calls that end at given rounds."""

    def __init__(self, connections: dict[Any, set[str]], calls_end: dict[str, int]) -> None:
        self.open = dict(connections)
        self.calls_end = calls_end
        self.rounds = 0
        self.closed: list[tuple[int, Any]] = []

    def busy(self) -> set[str]:
        self.rounds += 1
        return {dn for dn, end in self.calls_end.items() if self.rounds < end}

    def connections(self) -> dict[Any, set[str]]:
        return dict(self.open)

    def close(self, connection: Any) -> None:
        self.closed.append((self.rounds, connection))
        del self.open[connection]


def test_idle_clients_move_at_once_and_each_caller_as_its_call_ends() -> None:
    path = ScriptedPath({1: {"1002"}, 2: {"1003"}, 3: set(), 4: {"1004"}}, calls_end={"1003": 3, "1004": 5})
    result = gs.drain(path, wait=60, force=False, interval=0)
    assert path.closed == [(1, 1), (1, 3), (3, 2), (5, 4)]
    assert result["cut"] == [] and result["remaining"] == []
    assert set(result["waited"]) == {"1003", "1004"} and set(result["closed"]) == {"1002", "1003", "1004"}


def test_force_cuts_every_call_at_once_and_names_it() -> None:
    path = ScriptedPath({1: {"1002"}, 2: {"1003"}}, calls_end={"1003": 99})
    result = gs.drain(path, wait=60, force=True, interval=0)
    assert path.closed == [(1, 1), (1, 2)] and result["cut"] == ["1003"]


def test_a_call_still_up_after_the_wait_is_cut_and_named() -> None:
    path = ScriptedPath({2: {"1003"}}, calls_end={"1003": 99})
    result = gs.drain(path, wait=0.0, force=False, interval=0)
    assert result["cut"] == ["1003"] and not path.open
