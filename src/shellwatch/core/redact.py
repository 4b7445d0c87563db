"""Secret masking for the copies of source documents that alerts quote.

Values of ``process.env_vars`` (and the parent's) become ``[REDACTED]`` with their names kept;
credentials in command lines and argument arrays are masked: ``-u user:pass`` / ``--user user:pass``,
``--password=…`` and friends, and URL userinfo (``scheme://user:pass@host``). Only documents that need
it are re-encoded, and then every number keeps its original text (it is never parsed as a number).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["REDACTED", "mask_command_line", "mask_document"]

REDACTED = "[REDACTED]"
_MASK = "****"
_ENV_FIELDS = frozenset({"process.env_vars", "process.parent.env_vars"})
_COMMAND_FIELDS = frozenset(
    {
        "process.args",
        "process.command_line",
        "process.parent.args",
        "process.parent.command_line",
        "process.title",
        "process.parent.title",
    }
)
_URL_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)")
_SECRET_OPTION = re.compile(
    r"(?P<head>--?(?:password|passwd|pass|pwd|token|secret|api[-_]?key|access[-_]?key)(?:=|\s+))"
    r"(?P<value>\"[^\"]*\"|'[^']*'|\S+)",
    re.IGNORECASE,
)
_USER_OPTION = re.compile(r"(?P<head>(?:^|\s)(?:-u\s*|--user(?:=|\s+))['\"]?[^\s:'\"]*:)(?P<value>[^\s'\"]+)")
_SECRET_FLAGS = re.compile(r"--?(?:password|passwd|pass|pwd|token|secret|api[-_]?key|access[-_]?key)", re.IGNORECASE)


def mask_command_line(text: str) -> str:
    text = _URL_USERINFO.sub(lambda m: m.group("head") + _MASK, text)
    text = _SECRET_OPTION.sub(lambda m: m.group("head") + _MASK, text)
    return _USER_OPTION.sub(lambda m: m.group("head") + _MASK, text)


def _mask_args(args: list[Any]) -> list[Any]:
    out: list[Any] = []
    previous = ""
    for arg in args:
        if not isinstance(arg, str):
            out.append(arg)
            continue
        if previous in ("-u", "--user") and ":" in arg:
            masked = arg.split(":", 1)[0] + ":" + _MASK
        elif _SECRET_FLAGS.fullmatch(previous):
            masked = _MASK
        else:
            masked = mask_command_line(arg)
        previous = masked
        out.append(masked)
    return out


class _RawNumber(str):
    """A JSON number kept as its source text."""


class _Object(list[tuple[str, Any]]):
    """A decoded JSON object: its key/value pairs in order, duplicates kept."""


def _mask_value(path: str, value: Any) -> Any:
    if isinstance(value, _RawNumber | _Object):
        return value
    if path in _ENV_FIELDS:
        if isinstance(value, list):
            return [_mask_value(path, v) for v in value]
        if isinstance(value, str) and "=" in value:
            return value.split("=", 1)[0] + "=" + REDACTED
        return value
    if path in _COMMAND_FIELDS:
        if isinstance(value, list):
            return _mask_args(value)
        if isinstance(value, str):
            return mask_command_line(value)
    return value


def _walk(node: Any, prefix: str) -> Any:
    if isinstance(node, _Object):
        out = _Object()
        for key, value in node:
            path = f"{prefix}.{key}" if prefix else key
            out.append((key, _walk(_mask_value(path, value), path)))
        return out
    if isinstance(node, list):
        return [_walk(item, prefix) for item in node]
    return node


def _decode(raw: bytes) -> Any:
    return json.loads(raw, object_pairs_hook=_Object, parse_int=_RawNumber, parse_float=_RawNumber)


def _encode(node: Any, ascii_only: bool) -> str:
    if isinstance(node, _Object):
        members = (json.dumps(k, ensure_ascii=ascii_only) + ":" + _encode(v, ascii_only) for k, v in node)
        return "{" + ",".join(members) + "}"
    if isinstance(node, list):
        return "[" + ",".join(_encode(v, ascii_only) for v in node) + "]"
    if isinstance(node, _RawNumber):
        return str.__str__(node)
    return json.dumps(node, ensure_ascii=ascii_only)


def mask_document(raw: bytes) -> bytes:
    """``raw`` with secrets masked, byte-identical when there is nothing to mask."""
    try:
        tree = _decode(raw)
    except (ValueError, RecursionError):
        return raw
    masked = _walk(tree, "")
    if masked == tree:
        return raw
    try:
        return _encode(masked, ascii_only=False).encode()
    except UnicodeEncodeError:  # lone surrogates (valid as JSON escapes, not as UTF-8)
        return _encode(masked, ascii_only=True).encode()
