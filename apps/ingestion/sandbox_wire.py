"""What travels between a sandbox child and its parent: one JSON codec for both children.

The child runs ``fn(*args)`` and writes one line: the value, or what went wrong (the
exception's type and message, its ``code`` attribute, a traceback; ``MemoryError`` and a
refused confinement as their own kinds). The parent reads it with :func:`decode`, which
returns the value or raises: :class:`SandboxError` when the child gave no usable result
(out of memory, refused, garbled) and :class:`ChildRaised` when ``fn`` raised. Every string
that comes back is bounded (at most ``MESSAGE_LIMIT`` characters, no control or bidi
characters): it may reach the uploader. Callers never see the wire dicts.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from typing import Any

MESSAGE_LIMIT = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class SandboxError(Exception):
    """The child did not return a result. ``code``: "memory", "timeout", "crashed", "isolation"."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class ChildRaised(Exception):
    """``fn`` raised in the child: its exception's type name, bounded message, ``code``
    attribute (None if it had none) and traceback (may be empty)."""

    def __init__(self, type_name: str, message: str, code: str | None = None, traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.code, self.traceback = type_name, message, code, traceback


def bounded(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    """A child's message as the parent may show it: a string without control or bidi
    characters, at most ``limit`` characters."""
    text = _CONTROL.sub(" ", str(text if text is not None else ""))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def capture(fn: Callable[..., Any], *args: Any) -> dict:
    """Child side: ``fn(*args)`` as a wire dict. ``MemoryError`` is raised on, since it fails
    the whole child (:func:`encode` reports it)."""
    try:
        return {"ok": True, "value": fn(*args)}
    except MemoryError:
        raise
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        return {"ok": False, "kind": "exception", "type": type(exc).__name__, "message": str(exc),
                "code": getattr(exc, "code", None), "traceback": traceback.format_exc(limit=20)}


def encode(fn: Callable[..., Any], *args: Any) -> bytes:
    """Child side: one line of JSON with ``fn(*args)``'s outcome."""
    try:
        payload = capture(fn, *args)
    except MemoryError:
        payload = {"ok": False, "kind": "memory", "message": "MemoryError"}
    return json.dumps(payload).encode() + b"\n"


def encode_refusal(message: str) -> bytes:
    """Child side: the child could not be confined (apps.ingestion.confinement.ConfinementRefused)."""
    return json.dumps({"ok": False, "kind": "refused", "message": message}).encode() + b"\n"


def unwrap(payload: Any) -> Any:
    """Parent side, one wire dict (a line, or an item :func:`capture` made inside a value):
    the value, or :class:`ChildRaised`; :class:`SandboxError` for anything else."""
    if not isinstance(payload, dict) or not isinstance(payload.get("ok"), bool):
        raise SandboxError("returned something that is not a result", code="crashed")
    if payload["ok"]:
        return payload.get("value")
    kind = payload.get("kind", "exception")
    if kind == "memory":
        raise SandboxError("ran out of memory", code="memory")
    if kind == "refused":
        raise SandboxError(f"was refused: {bounded(payload.get('message'))}", code="isolation")
    code = payload.get("code")
    raise ChildRaised(bounded(payload.get("type"), 80), bounded(payload.get("message")),
                      None if code is None else bounded(code, 80), bounded(payload.get("traceback"), 8000))


def decode(data: bytes, *, memory_bytes: int) -> Any:
    """Parent side: the value a child wrote, or the error (see :func:`unwrap`)."""
    try:
        payload = json.loads(data)
    except ValueError:
        raise SandboxError("returned something that is not a result", code="crashed") from None
    try:
        return unwrap(payload)
    except SandboxError as error:
        if error.code == "memory":
            raise SandboxError(f"needed more than {memory_bytes // (1024 * 1024)} MiB of memory",
                               code="memory") from None
        raise
