"""Small readers of the rendered configs: nginx blocks, PJSIP sections, Kamailio substitutions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Section:
    """One [name] section of an Asterisk config, options in file order (keys may repeat)."""

    name: str
    options: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        values = self.values(key)
        return values[-1] if values else None

    def values(self, key: str) -> list[str]:
        return [value for option, value in self.options if option == key]

    @property
    def type(self) -> str | None:
        return self.get("type")


def asterisk_sections(text: str) -> list[Section]:
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            sections.append(Section(line[1 : line.index("]")]))
            continue
        key, sep, value = line.partition("=")
        if not sep or not sections:
            raise ValueError(f"not an option of a section: {raw!r}")
        sections[-1].options.append((key.strip(), value.lstrip(">").strip()))
    return sections


def sections_of_type(text: str, kind: str) -> list[Section]:
    return [section for section in asterisk_sections(text) if section.type == kind]


def nginx_strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def nginx_block(text: str, header: str) -> str:
    """The body of the first ``header { ... }`` block (comments removed), e.g. header="location /ws"."""
    source = nginx_strip_comments(text)
    match = re.search(rf"(?m)^\s*{re.escape(header)}\s*\{{", source)
    if match is None:
        raise LookupError(f"no block {header!r}")
    depth = 1
    for index in range(match.end(), len(source)):
        if source[index] == "{":
            depth += 1
        elif source[index] == "}":
            depth -= 1
            if depth == 0:
                return source[match.end() : index]
    raise ValueError(f"block {header!r} is not closed")


def nginx_directives(block: str, name: str) -> list[str]:
    """Arguments of every ``name ...;`` directive directly in ``block`` text (nested blocks included)."""
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^\s*{re.escape(name)}\s+([^;{{]*);", block)]


_SUBSTDEF = re.compile(r'^#!substdef\s+"!(?P<name>[^!]+)!(?P<value>[^!]*)!g?"\s*$', re.MULTILINE)
_DEFINE = re.compile(r"^#!define[ \t]+(?P<name>\w+)(?:[ \t]+(?P<value>.*?))?[ \t]*$", re.MULTILINE)


def kamailio_substdefs(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("value") for m in _SUBSTDEF.finditer(text)}


def kamailio_defines(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("value") or "" for m in _DEFINE.finditer(text)}


def kamailio_listens(text: str) -> set[str]:
    """The ``listen=`` sockets with the #!substdef substitutions applied (``proto:address:port``)."""
    substitutions = kamailio_substdefs(text)
    listens: set[str] = set()
    for match in re.finditer(r"(?m)^listen\s*=\s*(\S+)\s*$", text):
        socket = match.group(1)
        for name, value in substitutions.items():
            socket = socket.replace(name, value)
        listens.add(socket)
    return listens
