"""Hostile traffic (issue: reliability and security): the corpus in tests/lab/hostile.py, sent
over UDP to Kamailio and over wss through nginx, REGISTER floods from one source, and
WebSocket upgrades with foreign Origins.

Throughout, a real JsSIP agent stays registered over wss, and after every hostile message a
legitimate client registers with digest auth and gets its 200: the edge keeps serving.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import yaml
from lab import (
    DN_PASSWORDS,
    GATEWAY,
    LAB_VARS,
    ROOT,
    WSS_URL,
    Client,
    container_state,
    ensure_mode,
    forwarded_bindings,
    genesys_bindings,
    held_clients,
    run_client,
    service_log,
    standin_log,
    utc_now,
)
from lab.hostile import FOREIGN_ORIGINS, ROWS, Peer, Row, register
from lab.rawsip import Register, UdpSip, WsSip, parse_response, register_with_digest
from websockets.exceptions import ConnectionClosed, InvalidStatus

SIP_PORT = int(LAB_VARS.get("webrtc_kamailio_sip_port", 5070))
KAMAILIO_DEFAULTS = yaml.safe_load((ROOT / "roles/kamailio/defaults/main.yml").read_text())
PIKE_DENSITY = int(LAB_VARS.get("kamailio_pike_density", KAMAILIO_DEFAULTS["kamailio_pike_density"]))
AGENT = "1002"  # held over wss for the whole module
LEGIT = "1003"  # registers with digest auth over UDP after every hostile message
ATTACKER = "127.0.0.62"
LEGIT_SOURCE = "127.0.0.63"
# Kamailio names a flooding source once per 10 s (its floodlog table): each run floods from
# loopback addresses of its own, so that a run soon after another still sees its line.
_RUN = random.Random().randrange(1, 250)
UDP_FLOODER = f"127.0.64.{_RUN}"
WSS_FLOODER = f"127.0.65.{_RUN}"
SERVICES = ("nginx", "kamailio", "asterisk")
ROWS_BY_NAME = {row.name: row for row in ROWS}


@pytest.fixture(scope="module")
def module_started() -> str:
    return utc_now()


@pytest.fixture(scope="module")
def agent(module_started: str) -> Iterator[Client]:
    ensure_mode("kamailio")
    started = {s: (container_state(s) or {}).get("StartedAt") for s in SERVICES}
    with held_clients({AGENT: DN_PASSWORDS[AGENT]}) as client:
        yield client
        events = client.finish()
        after = {s: (container_state(s) or {}).get("StartedAt") for s in SERVICES}
    # The agent never lost its socket or its registration, and no daemon restarted.
    lost = [e for e in events if e["event"] in ("disconnected", "unregistered", "registrationFailed")]
    assert lost == [], lost
    assert after == started
    run_client({AGENT: DN_PASSWORDS[AGENT]}, "unregister")


def legit_registers() -> int | None:
    with UdpSip(GATEWAY, SIP_PORT, bind=LEGIT_SOURCE) as udp:
        via = f"{udp.local[0]}:{udp.local[1]}"
        reg = Register(GATEWAY, LEGIT, LEGIT, f"sip:{LEGIT}@{via}", via, transport="UDP", expires=60)
        answer = register_with_digest(udp, reg, LEGIT, DN_PASSWORDS[LEGIT])
        return answer.status if answer else None


def send_udp(row: Row) -> int | None:
    with UdpSip(GATEWAY, SIP_PORT, bind=ATTACKER) as udp:
        peer = Peer(GATEWAY, f"{udp.local[0]}:{udp.local[1]}", "UDP")
        answer = udp.send(row.build(peer), timeout=1.0, retransmit=False)
        return answer.status if answer else None


def send_wss(row: Row) -> int | None:
    with WsSip(WSS_URL) as ws:
        peer = Peer(GATEWAY, "attacker.invalid", "WSS")
        try:
            return ws.send(row.build(peer), timeout=1.0).status
        except (TimeoutError, ConnectionClosed):
            return None  # dropped (or the connection closed on it)


@pytest.mark.parametrize("transport", ["udp", "wss"])
@pytest.mark.parametrize("name", list(ROWS_BY_NAME))
def test_hostile_message_gets_an_error_or_is_dropped_and_the_edge_keeps_serving(
    agent: Client, name: str, transport: str
) -> None:
    row = ROWS_BY_NAME[name]
    before = bound_at_genesys()
    status = send_udp(row) if transport == "udp" else send_wss(row)
    assert status is None or status >= 300, f"{name} over {transport} was accepted: {status}"
    assert status in row.allowed, f"{name} ({row.attack}) over {transport}: {status}, allowed {row.allowed}"
    # No effect: no binding at Genesys appeared, moved or went (a dropped message that had
    # changed something would not count as dropped) ...
    assert bound_at_genesys() == before, f"{name} over {transport} changed the bindings at Genesys"
    # ... and the edge is still serving.
    assert legit_registers() == 200, f"a legitimate client was refused after {name} over {transport}"


def bound_at_genesys() -> set[tuple[str, str]]:
    """(DN, contact) of every binding at the stand-in but the legitimate client's, which the
    check after each message renews."""
    return {(dn, b["contact"]) for dn, found in genesys_bindings().items() if dn != LEGIT for b in found}


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_websocket_upgrade_with_a_foreign_origin_is_refused(agent: Client, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        WsSip(WSS_URL, origin=origin)
    assert refused.value.response.status_code == 403


def flood_messages(peer: Peer, count: int) -> list[str]:
    return [register(peer, AGENT).render() for _ in range(count)]


def test_udp_register_flood_from_one_source_is_rate_limited_while_agents_keep_registering(agent: Client) -> None:
    started = utc_now()
    sent = 3 * PIKE_DENSITY
    answers: Counter[tuple[int, str]] = Counter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((UDP_FLOODER, 0))
    messages = flood_messages(Peer(GATEWAY, f"{UDP_FLOODER}:{sock.getsockname()[1]}", "UDP"), sent)
    done = threading.Event()

    def read() -> None:
        sock.settimeout(0.5)
        while not done.is_set():
            try:
                raw, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            response = parse_response(raw.decode(errors="replace"))
            answers[(response.status, response.reason)] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for message in messages:
            sock.sendto(message.encode(), (GATEWAY, SIP_PORT))
        # While the flooder is blocked, a legitimate client (another address) is served.
        assert legit_registers() == 200
        run_client({LEGIT: DN_PASSWORDS[LEGIT]}, "register")
        time.sleep(3)
    finally:
        done.set()
        reader.join()
        sock.close()
    assert answers[(503, "Rate Limited")] > 0, answers
    assert answers[(401, "Unauthorized")] < sent, answers
    assert f"REGISTER flood from {UDP_FLOODER}" in service_log("kamailio", since=started)


def test_wss_register_flood_from_one_client_is_rate_limited_per_client_address(agent: Client) -> None:
    """All wss clients reach Kamailio from nginx: the limit must hit the flooding client's
    address (X-Real-IP), not every agent behind nginx."""
    started = utc_now()
    sent = 3 * PIKE_DENSITY
    answered = 0
    with WsSip(WSS_URL, bind=WSS_FLOODER) as ws:
        for message in flood_messages(Peer(GATEWAY, "flooder.invalid", "WSS"), sent):
            ws.ws.send(message)
        run_client({LEGIT: DN_PASSWORDS[LEGIT]}, "register")  # an agent from another address
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                ws.ws.recv(timeout=1)
            except TimeoutError:
                break
            answered += 1
    assert answered < sent, "every flooded REGISTER was answered: no rate limit"
    assert f"REGISTER flood from {WSS_FLOODER}" in service_log("kamailio", since=started)


def test_nothing_hostile_reached_genesys(agent: Client, module_started: str) -> None:
    """After the whole corpus and the floods, the stand-in holds only the lab's real DNs and saw no call."""
    assert set(genesys_bindings()) <= set(DN_PASSWORDS)
    assert forwarded_bindings(AGENT), "the held agent lost its binding at Genesys"
    calls = [line for line in standin_log(since=module_started).splitlines() if "genesys-standin: call" in line]
    assert calls == [], f"hostile INVITEs reached Genesys: {calls[:5]}"
