"""Entry point: python3 -m registration_monitor --config monitor.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from panoramisk import Manager

from .events import WATCHED, parse

log = logging.getLogger("registration_monitor")


def load_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())
    for key in ("mode", "ami_host", "ami_port", "ami_user", "ami_secret"):
        if key not in config:
            raise SystemExit(f"registration-monitor: '{key}' missing from {path}")
    return config


async def run(config: dict[str, Any]) -> None:
    mode = str(config["mode"])
    manager = Manager(
        host=config["ami_host"],
        port=int(config["ami_port"]),
        username=config["ami_user"],
        secret=config["ami_secret"],
        reconnect_timeout=2,
        forgetable_actions=("ping", "login"),
    )

    def on_event(_manager: Manager, message: Any) -> None:
        event = parse(dict(message.items()), mode)
        if event is not None:
            print(event.to_json(), flush=True)

    for name in WATCHED:
        manager.register_event(name, on_event)
    log.info("connecting to AMI at %s:%s (mode %s)", config["ami_host"], config["ami_port"], mode)
    await manager.connect(run_forever=False)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="registration_monitor")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(load_config(args.config)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
