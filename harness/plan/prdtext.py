"""PRD.json's text edited in place: ralph writes only the `passes` values, and keeps the rest of the file byte for
byte (a hand-formatted plan stays as its author wrote it; issue 24: the first write re-indented it all).

The standard library's JSON decoder gives no positions and no JSON library in our dependencies keeps a file's
formatting on a round trip, so the walk below finds the spans by hand: it reads the object and array structure
itself and hands every leaf value to `json.JSONDecoder.raw_decode`, which returns where that value ends.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class Unreadable(ValueError):
    """The text is not the JSON object the walk expects (the caller then rewrites the file whole)."""


def _skip(text: str, i: int) -> int:
    return _WS.match(text, i).end()  # type: ignore[union-attr]  # the pattern matches the empty string


def _expect(text: str, i: int, char: str) -> None:
    if i >= len(text) or text[i] != char:
        raise Unreadable(f"expected {char!r} at offset {i}")


def members(text: str, i: int) -> tuple[list[tuple[str, int, int]], int]:
    """(key, value start, value end) of each member of the object at `text[i]`, and the offset after it."""
    _expect(text, i, "{")
    out: list[tuple[str, int, int]] = []
    i = _skip(text, i + 1)
    if text[i:i + 1] == "}":
        return out, i + 1
    while True:
        _expect(text, i, '"')
        key, i = scanstring(text, i + 1)
        i = _skip(text, i)
        _expect(text, i, ":")
        start = _skip(text, i + 1)
        _, end = _DECODER.raw_decode(text, start)
        out.append((key, start, end))
        i = _skip(text, end)
        if text[i:i + 1] == "}":
            return out, i + 1
        _expect(text, i, ",")
        i = _skip(text, i + 1)


def elements(text: str, i: int) -> list[int]:
    """The start offset of each element of the array at `text[i]`."""
    _expect(text, i, "[")
    out: list[int] = []
    i = _skip(text, i + 1)
    if text[i:i + 1] == "]":
        return out
    while True:
        out.append(i)
        _, end = _DECODER.raw_decode(text, i)
        i = _skip(text, end)
        if text[i:i + 1] == "]":
            return out
        _expect(text, i, ",")
        i = _skip(text, i + 1)


def with_passes(text: str, passes: dict[str, bool]) -> str:
    """`text` with each named feature's `passes` set, nothing else changed; a feature without the key gets it
    after its last member. Raises `Unreadable` when the text is not a PRD object with a `features` list."""
    try:
        top, _ = members(text, _skip(text, 0))
        features = next((start for key, start, _ in top if key == "features"), None)
        if features is None:
            raise Unreadable("no features list")
        edits: list[tuple[int, int, str]] = []
        for start in elements(text, features):
            fields, _ = members(text, start)
            ids = [json.loads(text[s:e]) for key, s, e in fields if key == "id"]
            if not ids or ids[0] not in passes:
                continue
            value = "true" if passes[ids[0]] else "false"
            spans = [(s, e) for key, s, e in fields if key == "passes"]
            if spans:
                edits.append((*spans[-1], value))
            elif fields:
                edits.append((fields[-1][2], fields[-1][2], f', "passes": {value}'))
    except (json.JSONDecodeError, IndexError) as e:
        raise Unreadable(str(e)) from None
    for s, e, value in sorted(edits, reverse=True):
        text = text[:s] + value + text[e:]
    return text
