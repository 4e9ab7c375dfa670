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

Allowed: AF_UNIX; loopback (127.0.0.0/8, ::1, localhost); the hosts of DATABASE_URL,
CELERY_BROKER_URL, LLM_BASE_URL and, with single sign-on, the OIDC provider's token,
userinfo and JWKS endpoints, when they are loopback or private (a public one only if also
on the allowlist); ``RAG_EGRESS_ALLOW`` (comma-separated CIDRs, IPs, hosts,
``host:port``). Everything else raises :class:`EgressBlocked` (a ConnectionRefusedError)
before the connection is made, is counted in-process, and is written to the audit trail
best-effort by the recorder apps.audit installs.

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

import collections
import ipaddress
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

# The order gives the system check ids: rag.E001 (database) ... rag.E006 (OIDC JWKS).
# The OIDC provider's server-side endpoints count when single sign-on is configured; its
# authorization endpoint is visited by the user's browser, not by this server.
ENDPOINT_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "LLM_BASE_URL",
                      "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class EgressBlocked(ConnectionRefusedError):
    """An outbound connection the operator did not allow; refused before it was made."""


@dataclass(frozen=True)
class Rule:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    host: str = ""  # a host name, lower case
    port: int | None = None

    def matches(self, host: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            ip = _ip(host)
            return ip is not None and ip in self.network
        return host.lower().rstrip(".") == self.host


def parse_rule(text: str) -> Rule:
    """``10.0.0.0/8``, ``10.1.2.3``, ``db.internal``, ``db.internal:5432``, ``[fd00::1]:443``."""
    text = text.strip()
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    try:
        return Rule(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        return Rule(host=host.lower().rstrip("."), port=port)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    ip = _ip(host)
    if ip is not None:
        return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)
    name = host.lower().rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(".localhost")


def is_private(host: str) -> bool:
    ip = _ip(host)
    return ip is not None and (ip.is_private or ip.is_loopback) and not ip.is_global


@dataclass(frozen=True)
class Endpoint:
    variable: str
    url: str
    scheme: str
    host: str  # "" for Unix sockets
    port: int | None

    @property
    def unix_socket(self) -> bool:
        return not self.host or self.host.startswith("/") or "socket" in self.scheme

    def locality(self, allow: list[Rule]) -> str:
        """'unix socket', 'loopback', 'private', 'allowlisted' or 'PUBLIC'."""
        if self.unix_socket:
            return "unix socket"
        if is_loopback(self.host):
            return "loopback"
        if any(rule.matches(self.host, self.port) for rule in allow):
            return "allowlisted"
        if is_private(self.host):
            return "private"
        if _ip(self.host) is None:
            return "private" if _resolves_privately(self.host) else "PUBLIC"
        return "PUBLIC"


def parse_endpoint(variable: str, url: str) -> Endpoint:
    parts = urlsplit(url)
    host = unquote(parts.hostname or "")  # postgresql://user@%2Fpath%2Fto%2Fsocket/db
    if not host and parts.query:  # postgresql://user@/db?host=/path/to/socket
        for item in parts.query.split("&"):
            key, _, value = item.partition("=")
            if key == "host":
                host = value
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:  # https://idp.internal/token connects to 443: a "host:443" allowlist entry matches it
        port = {"http": 80, "https": 443}.get(parts.scheme)
    return Endpoint(variable, url, parts.scheme, host, port)


def configured_endpoints() -> list[Endpoint]:
    from rag_platform.runtime import endpoint

    found = []
    for variable in ENDPOINT_VARIABLES:
        url = endpoint(variable) or ("http://127.0.0.1:8001/v1" if variable == "LLM_BASE_URL" else "")
        if url:
            found.append(parse_endpoint(variable, url))
    return found


def allowlist_from_env() -> list[Rule]:
    raw = os.environ.get("RAG_EGRESS_ALLOW", "")
    return [parse_rule(item) for item in raw.split(",") if item.strip()]


def _resolves_privately(host: str) -> bool:
    """A configured host name counts as private if every address it resolves to is private."""
    with bypass():
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
    return bool(infos) and all(is_private(info[4][0]) for info in infos)


@dataclass
class Policy:
    allow: list[Rule] = field(default_factory=list)
    endpoint_hosts: set[str] = field(default_factory=set)
    forbidden: list[Rule] = field(default_factory=list)  # for self-tests: wins over everything
    silent: list[Rule] = field(default_factory=list)  # forbidden rules whose refusals are not recorded

    @classmethod
    def from_environment(cls) -> Policy:
        allow = allowlist_from_env()
        hosts: set[str] = set()
        for endpoint in configured_endpoints():
            if endpoint.unix_socket:
                continue
            locality = endpoint.locality(allow)
            if locality in {"loopback", "private", "allowlisted"}:
                hosts.add(endpoint.host.lower())
                allow.append(Rule(host=endpoint.host.lower()) if _ip(endpoint.host) is None
                             else Rule(network=ipaddress.ip_network(endpoint.host)))
                if _ip(endpoint.host) is None:  # a name: allow what it resolves to
                    with bypass():
                        try:
                            for info in socket.getaddrinfo(endpoint.host, endpoint.port):
                                allow.append(Rule(network=ipaddress.ip_network(info[4][0].split("%")[0])))
                        except OSError:
                            pass
        return cls(allow=allow, endpoint_hosts=hosts)

    def connect_allowed(self, host: str, port: int | None) -> tuple[bool, str]:
        if any(rule.matches(host, port) for rule in self.forbidden):
            return False, "marked forbidden (self-test)"
        if is_loopback(host):
            return True, "loopback"
        if any(rule.matches(host, port) for rule in self.allow):
            return True, "allowed"
        return False, "not loopback, not a configured endpoint, not on RAG_EGRESS_ALLOW"

    def lookup_allowed(self, host: str) -> tuple[bool, str]:
        if _ip(host) is not None:
            return True, "address literal (the connection itself is checked)"
        if any(rule.host and rule.host == host.lower().rstrip(".") for rule in self.forbidden):
            return False, "marked forbidden (self-test)"
        if is_loopback(host) or host.lower() == socket.gethostname().lower():
            return True, "local name"
        if any(rule.host and rule.matches(host, rule.port) for rule in self.allow):
            return True, "allowed"
        return False, "name lookup for a host that is not allowed (a DNS query would leave)"


# --- process state ------------------------------------------------------------------------
_state_lock = threading.Lock()
_local = threading.local()
_installed = False
_policy: Policy | None = None
blocked_count = 0
recent_blocked: collections.deque[dict] = collections.deque(maxlen=200)
_recorder: Callable[[dict], None] | None = None


def policy() -> Policy:
    global _policy
    if _policy is None:
        with _state_lock:
            if _policy is None:
                _policy = Policy.from_environment()
    return _policy


def reset_policy() -> None:
    """Re-read the environment (after the stack publishes its endpoints, or in tests)."""
    global _policy
    _policy = None


def set_recorder(recorder: Callable[[dict], None] | None) -> None:
    global _recorder
    _recorder = recorder


def is_installed() -> bool:
    return _installed


@contextmanager
def bypass() -> Iterator[None]:
    """For the guard's own lookups of configured endpoint names only."""
    previous = getattr(_local, "bypass", False)
    _local.bypass = True
    try:
        yield
    finally:
        _local.bypass = previous


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


def _caller() -> list[str]:
    frames = traceback.extract_stack()[:-3]
    useful = [f for f in frames if not f.filename.endswith(("/socket.py", "/egress.py", "/ssl.py"))]
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in useful[-6:]]


def _block(kind: str, host: str, port: int | None, reason: str) -> None:
    global blocked_count
    attempt = {
        "kind": kind,
        "destination": f"{host}:{port}" if port is not None else host,
        "host": host,
        "port": port,
        "reason": reason,
        "code": _caller(),
        "pid": os.getpid(),
        "time": time.time(),
    }
    with _state_lock:
        blocked_count += 1
        recent_blocked.append(attempt)
    recorder = _recorder
    if recorder is not None and not getattr(_local, "recording", False):
        _local.recording = True
        try:
            recorder(attempt)
        except Exception:  # best effort: the refusal matters more than its record
            pass
        finally:
            _local.recording = False
    raise EgressBlocked(f"outbound connection to {attempt['destination']} blocked by the egress guard: {reason}")


def _address_host(address) -> tuple[str, int | None] | None:
    if not isinstance(address, tuple) or not address or address[0] is None:
        return None
    host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
    port = address[1] if len(address) > 1 and isinstance(address[1], int) else None
    return host, port


def _check_name(kind: str, host: str, port: int | None) -> None:
    """A host *name* in a connect or send: refused unless the policy lets it be resolved."""
    if not host or _ip(host) is not None:
        return
    current = policy()
    allowed, reason = current.lookup_allowed(host)
    if not allowed:
        if any(rule.matches(host, port) or (rule.host and rule.host == host.lower()) for rule in current.silent):
            raise EgressBlocked(f"outbound connection to {host}:{port} blocked by the egress guard: {reason}")
        _block(kind, host, port, reason)


def _check_reverse(host: str) -> None:
    if not host:
        return
    if _ip(host) is None:  # gethostbyaddr also takes a name: a forward lookup first
        allowed, reason = policy().lookup_allowed(host)
    elif is_loopback(host):
        allowed, reason = True, "loopback"
    else:
        allowed, reason = False, "reverse lookup (a PTR query would leave)"
    if any(rule.matches(host, None) for rule in policy().forbidden):
        allowed, reason = False, "marked forbidden (self-test)"
    if not allowed:
        _block("reverse lookup", host, None, reason)


def _hook(event: str, args: tuple) -> None:
    if not event.startswith("socket.") or getattr(_local, "bypass", False):
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
            _block(event.split(".", 1)[1], host, port, reason)
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0]
        if host is None:
            return
        host = host.decode() if isinstance(host, bytes) else str(host)
        if not host:
            return
        allowed, reason = policy().lookup_allowed(host)
        if not allowed:
            _block("lookup", host, None, reason)
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
        if not getattr(_local, "bypass", False) and self.family in (socket.AF_INET, socket.AF_INET6):
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
        if rest and not getattr(_local, "bypass", False) and self.family in (socket.AF_INET, socket.AF_INET6):
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
