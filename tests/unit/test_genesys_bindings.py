"""The stand-in's binding reader (scripts/genesys_bindings.py) on a captured usrloc ul.dump."""

from __future__ import annotations

from genesys_bindings import parse_ul_dump


def ul_dump(*contacts: tuple[str, str, object]) -> dict[str, object]:
    aors: dict[str, list[dict[str, object]]] = {}
    for aor, address, expires in contacts:
        aors.setdefault(aor, []).append({"Contact": {"Address": address, "Expires": expires}})
    return {
        "result": {
            "Domains": [
                {"Domain": {"AoRs": [{"Info": {"AoR": aor, "Contacts": items}} for aor, items in aors.items()]}}
            ]
        }
    }


def test_live_contacts_are_bindings_with_their_remaining_seconds() -> None:
    reply = ul_dump(("1003", "sip:1003@127.0.0.54:5070", 598), ("1002", "sip:1002@127.0.0.54:5070", "41"))
    assert parse_ul_dump(reply) == {
        "1002": [{"contact": "sip:1002@127.0.0.54:5070", "expires": 41}],
        "1003": [{"contact": "sip:1003@127.0.0.54:5070", "expires": 598}],
    }


def test_contacts_that_ran_out_are_not_bindings_before_the_usrloc_timer_purges_them() -> None:
    reply = ul_dump(
        ("1002", "sip:1002@127.0.0.54:5070", "expired"),
        ("1003", "sip:1003@127.0.0.54:5070", "deleted"),
        ("1003", "sip:1003@127.0.0.54:5060;line=abc", 300),
    )
    assert parse_ul_dump(reply) == {"1003": [{"contact": "sip:1003@127.0.0.54:5060;line=abc", "expires": 300}]}
