"""The one JSON reader for files people and other tools hand us: the index, plans, metadata
and the config.

Python's ``json`` takes more than JSON: a UTF-8 byte order mark, ``NaN`` and ``Infinity``,
an object with the same key twice (the last wins, silently), lone UTF-16 surrogates,
numbers too large for any other reader. Each is refused here with where it is, so every
command and ``validate-index`` give one verdict on the same bytes.
"""

from __future__ import annotations

import json
import math

import orjson

BOM = b"\xef\xbb\xbf"
LARGEST = 2**63 - 1  # what every index reader (and writer) holds as an integer


class JSONTextError(ValueError):
    """Bytes that are not strict JSON; ``line`` and ``column`` are 1-based, or None."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None):
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"not valid JSON{where}: {reason}")
        self.reason, self.line, self.column = reason, line, column


class _Refused(Exception):
    """Raised inside the decoder's hooks, which know no position."""


def loads(raw: bytes | str):
    """The value ``raw`` holds, or :class:`JSONTextError`."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.startswith(BOM):
        raise JSONTextError("the file starts with a UTF-8 byte order mark; save it without one",
                            1, 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JSONTextError(f"the bytes are not UTF-8 ({error.reason})",
                            *_position(raw, error.start)) from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_constant,
                           parse_float=_finite, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise JSONTextError(error.msg, error.lineno, error.colno) from None
    except _Refused as refused:
        raise JSONTextError(str(refused)) from None
    except RecursionError:
        raise JSONTextError("values are nested too deeply") from None
    if "\\u" in text:  # an escaped lone surrogate is the one thing left that json takes
        try:
            orjson.dumps(value)
        except TypeError:
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise JSONTextError(error.msg, error.lineno, error.colno) from None
            raise JSONTextError("a string holds a lone UTF-16 surrogate") from None
    return value


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    return line, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        owner = next((f" (the object whose {name} is {json.dumps(value[name])})"
                      for name in ("local_path", "issue_number")
                      if isinstance(value.get(name), (str, int))), "")
        raise _Refused(f"the key {json.dumps(twice)} appears twice in one object{owner}")
    return value


def _constant(name: str):
    raise _Refused(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Refused(f"the number {text} is too large")
    return number


def _bounded_int(text: str) -> int:
    number = int(text) if len(text) <= 20 else None  # 2**63 has 19 digits
    if number is None or abs(number) > LARGEST:
        shown = text if len(text) <= 30 else text[:30] + "..."
        raise _Refused(f"the number {shown} is too large")
    return number
