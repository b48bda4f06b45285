"""WebSocket upgrades with a foreign Origin are refused by nginx, in both modes (allow list:
nginx_ws_allowed_origins in the lab inventory)."""

from __future__ import annotations

import pytest
from lab import WSS_URL, ensure_mode
from lab.rawsip import WsSip
from websockets.exceptions import InvalidStatus


@pytest.mark.parametrize("mode", ["kamailio", "static"])
def test_websocket_upgrade_with_a_foreign_origin_is_refused(mode: str) -> None:
    ensure_mode(mode)
    with pytest.raises(InvalidStatus) as refused:
        WsSip(WSS_URL, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with WsSip(WSS_URL, origin="https://lab-gateway:8443"):
        pass  # an allowed Origin opens the WebSocket
