"""What the gateway-state reporter (roles/gateway/files/gateway_state.py) makes of Kamailio's
fwdres and fwdlisted htables: "bound" means granted by Genesys and not yet lapsed."""

from __future__ import annotations

from typing import Any

from .gateway_state_module import load

gs = load()


def dump(**values: str) -> list[dict[str, Any]]:
    """htable.dump's result shape: buckets of slots of {name, value}."""
    slots = [{"name": k, "value": v, "type": "str"} for k, v in values.items()]
    return [{"entry": 0, "size": len(values), "slot": slots}]


def test_a_grant_shorter_than_asked_is_what_counts() -> None:
    # Asked 300, Genesys granted 12 at t=1000: bound until 1012, whatever was asked.
    forwarded = gs.parse_htable_dump(dump(**{"1002": "200|12|1000|1012"}))
    assert forwarded == {"1002": {"code": 200, "expires": 12, "time": 1000, "until": 1012}}


def test_a_failed_refresh_keeps_the_previous_grant_until_it_ends() -> None:
    forwarded = gs.parse_htable_dump(dump(**{"1002": "408|0|1010|1012", "1003": "503|0|1010|0"}))
    assert forwarded["1002"]["until"] == 1012 and forwarded["1002"]["code"] == 408
    assert forwarded["1003"]["until"] == 0


def test_a_three_field_value_is_bound_for_its_grant_from_its_time() -> None:
    forwarded = gs.parse_htable_dump(dump(**{"1002": "200|600|1000", "1003": "408|600|1000", "1004": "200|0|1000"}))
    assert [forwarded[d]["until"] for d in ("1002", "1003", "1004")] == [1600, 0, 0]


def test_malformed_values_are_skipped() -> None:
    assert gs.parse_htable_dump(dump(**{"1002": "junk", "1003": "200|x|1"})) == {}


def test_listed_contacts() -> None:
    listed = gs.parse_listed_dump(dump(**{"1002": "1|0|1000", "1003": "1|1|1001", "1004": "?"}))
    assert listed == {"1002": {"mine": 1, "static": 0, "time": 1000}, "1003": {"mine": 1, "static": 1, "time": 1001}}
