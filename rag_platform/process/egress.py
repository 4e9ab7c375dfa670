"""The egress guard: no outbound connection except to loopback, configured endpoints and the
operator's allowlist. Installed first thing in every process (manage.py, settings, Celery
worker and beat, WSGI/ASGI, the stack supervisor).

It is a Python audit hook (``sys.addaudithook``), not a monkeypatch: CPython raises the
``socket.connect``/``socket.sendto``/``socket.getaddrinfo`` events inside the socket module
itself, before any packet is sent, for every library that uses Python sockets (httpx,
requests, urllib3, redis-py, kombu, huggingface_hub...), and an audit hook cannot be
removed or bypassed by replacing ``socket.socket``. What it cannot see: C libraries that
open their own sockets (libpq inside psycopg) and other processes that are not Python
(the vLLM server is Python but not ours: it relies on its offline variables and binding to
127.0.0.1). Configured endpoints are therefore also checked at start-up (the Django system
check ``rag.E001``-``E006`` in apps.audit.checks).

What is allowed is rag_platform.process.egress_policy; everything else raises
:class:`EgressBlocked` (a ConnectionRefusedError) before the connection is made, is counted
in-process, and is written to the audit trail best-effort by the recorder apps.audit
installs (rag_platform.process.egress_refusals). This module enforces: the audit hook, the socket
methods that check names, the process's policy.

Names (security review, finding 9). CPython resolves a host name given to ``connect`` or
``sendto`` inside the C call, *before* it raises the audit event, so the DNS query would
already have left when the hook refused the connection. The guard therefore also wraps
``socket.socket.connect``/``connect_ex``/``sendto`` to check a name against the policy before
the C code resolves it, and the hook refuses any name in a connect or send that the policy
would not let it resolve. Reverse lookups (``gethostbyaddr``, ``getnameinfo``) send a PTR query
to the resolver whatever the address, so they are refused except for loopback addresses and
this machine's own name.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rag_platform.process.egress_policy import Policy, bypassed, ip_of, is_loopback, parse_rule
from rag_platform.process.egress_refusals import EgressBlocked, refuse

_state_lock = threading.Lock()
_installed = False
_policy: Policy | None = None


def policy() -> Policy:
    global _policy
    if _policy is None:
        with _state_lock:
            if _policy is None:
                _policy = Policy.from_environment()
    return _policy


def is_installed() -> bool:
    return _installed


@contextmanager
def forbidden(host: str, port: int | None = None, *, record: bool = True) -> Iterator[None]:
    """Mark a (loopback) destination forbidden: the self-test and the guard's tests use it so
    that even a broken guard would send nothing off the machine. ``record=False`` (the
    attestation self-test) keeps the refusal out of the counter and the trail."""
    rule = parse_rule(f"[{host}]:{port}" if ":" in host and port else f"{host}:{port}" if port else host)
    current = policy()
    current.forbidden.append(rule)
    if not record:
        current.silent.append(rule)
    try:
        yield
    finally:
        current.forbidden.remove(rule)
        if not record:
            current.silent.remove(rule)


def _address_host(address) -> tuple[str, int | None] | None:
    if not isinstance(address, tuple) or not address or address[0] is None:
        return None
    host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
    port = address[1] if len(address) > 1 and isinstance(address[1], int) else None
    return host, port


def _check_name(kind: str, host: str, port: int | None) -> None:
    """A host *name* in a connect or send: refused unless the policy lets it be resolved."""
    if not host or ip_of(host) is not None:
        return
    current = policy()
    allowed, reason = current.lookup_allowed(host)
    if not allowed:
        if any(rule.matches(host, port) or (rule.host and rule.host == host.lower()) for rule in current.silent):
            raise EgressBlocked(f"outbound connection to {host}:{port} blocked by the egress guard: {reason}")
        refuse(kind, host, port, reason)


def _check_reverse(host: str) -> None:
    if not host:
        return
    if ip_of(host) is None:  # gethostbyaddr also takes a name: a forward lookup first
        allowed, reason = policy().lookup_allowed(host)
    elif is_loopback(host):
        allowed, reason = True, "loopback"
    else:
        allowed, reason = False, "reverse lookup (a PTR query would leave)"
    if any(rule.matches(host, None) for rule in policy().forbidden):
        allowed, reason = False, "marked forbidden (self-test)"
    if not allowed:
        refuse("reverse lookup", host, None, reason)


def _hook(event: str, args: tuple) -> None:
    if not event.startswith("socket.") or bypassed():
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[1]
        if address is None or getattr(sock, "family", None) == getattr(socket, "AF_UNIX", None):
            return
        found = _address_host(address)
        if found is None:
            return
        host, port = found
        _check_name(event.split(".", 1)[1], host, port)
        current = policy()
        allowed, reason = current.connect_allowed(host, port)
        if not allowed:
            if any(rule.matches(host, port) for rule in current.silent):
                raise EgressBlocked(f"outbound connection to {host}:{port} blocked by the egress guard: {reason}")
            refuse(event.split(".", 1)[1], host, port, reason)
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0]
        if host is None:
            return
        host = host.decode() if isinstance(host, bytes) else str(host)
        if not host:
            return
        allowed, reason = policy().lookup_allowed(host)
        if not allowed:
            refuse("lookup", host, None, reason)
    elif event == "socket.gethostbyaddr":
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0] or "")
        _check_reverse(host)
    elif event == "socket.getnameinfo":
        found = _address_host(args[0])
        if found is not None:
            _check_reverse(found[0])


def _guarded(method_name: str, address_index: int):
    """``socket.socket.<method>`` checking a host name before the C code resolves it."""
    original = getattr(socket.socket, method_name)

    def method(self, *args):
        if not bypassed() and self.family in (socket.AF_INET, socket.AF_INET6):
            address = args[address_index] if len(args) > address_index else None
            found = _address_host(address)
            if found is not None:
                _check_name(method_name, *found)
        return original(self, *args)

    method.__name__ = method.__qualname__ = method_name
    method.__doc__ = original.__doc__
    method.__wrapped__ = original
    return method


def _guard_name_resolution_in_socket_calls() -> None:
    socket.socket.connect = _guarded("connect", 0)
    socket.socket.connect_ex = _guarded("connect_ex", 0)
    socket.socket.sendto = _guarded_sendto()


def _guarded_sendto():
    original = socket.socket.sendto

    def sendto(self, data, *rest):  # sendto(data, address) or sendto(data, flags, address)
        if rest and not bypassed() and self.family in (socket.AF_INET, socket.AF_INET6):
            found = _address_host(rest[-1])
            if found is not None:
                _check_name("sendto", *found)
        return original(self, data, *rest)

    sendto.__wrapped__ = original
    return sendto


def install_egress_guard() -> None:
    """Install the guard in this process (idempotent; an audit hook stays for the process's life)."""
    global _installed
    with _state_lock:
        if _installed:
            return
        sys.addaudithook(_hook)
        _guard_name_resolution_in_socket_calls()
        _installed = True
