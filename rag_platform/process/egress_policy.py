"""What the egress guard allows: the rules, the configured endpoints and the policy built from
them (rag_platform.process.egress enforces it, rag_platform.process.egress_refusals keeps what it refused).

Allowed: AF_UNIX; loopback (127.0.0.0/8, ::1, localhost); the hosts of DATABASE_URL,
CELERY_BROKER_URL, LLM_BASE_URL and, with single sign-on, the OIDC provider's token,
userinfo and JWKS endpoints, when they are loopback or private (a public one only if also
on the allowlist); ``RAG_EGRESS_ALLOW`` (comma-separated CIDRs, IPs, hosts, ``host:port``).
A host name may be looked up only if a connection to it would be allowed; reverse lookups
only for loopback addresses and this machine's own name.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

# The order gives the system check ids: rag.E001 (database) ... rag.E006 (OIDC JWKS).
# The OIDC provider's server-side endpoints count when single sign-on is configured; its
# authorization endpoint is visited by the user's browser, not by this server.
ENDPOINT_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "LLM_BASE_URL",
                      "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


@dataclass(frozen=True)
class Rule:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    host: str = ""  # a host name, lower case
    port: int | None = None

    def matches(self, host: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            ip = ip_of(host)
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


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    ip = ip_of(host)
    if ip is not None:
        return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)
    name = host.lower().rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(".localhost")


def is_private(host: str) -> bool:
    ip = ip_of(host)
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
        if ip_of(self.host) is None:
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
    from rag_platform.process.runtime import endpoint

    found = []
    for variable in ENDPOINT_VARIABLES:
        url = endpoint(variable) or ("http://127.0.0.1:8001/v1" if variable == "LLM_BASE_URL" else "")
        if url:
            found.append(parse_endpoint(variable, url))
    return found


def allowlist_entries() -> list[str]:
    """``RAG_EGRESS_ALLOW`` as the operator wrote it, entry by entry (read before Django: the
    guard is installed first)."""
    return [item.strip() for item in os.environ.get("RAG_EGRESS_ALLOW", "").split(",") if item.strip()]


def allowlist_from_env() -> list[Rule]:
    return [parse_rule(item) for item in allowlist_entries()]


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
                allow.append(Rule(host=endpoint.host.lower()) if ip_of(endpoint.host) is None
                             else Rule(network=ipaddress.ip_network(endpoint.host)))
                if ip_of(endpoint.host) is None:  # a name: allow what it resolves to
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
        if ip_of(host) is not None:
            return True, "address literal (the connection itself is checked)"
        if any(rule.host and rule.host == host.lower().rstrip(".") for rule in self.forbidden):
            return False, "marked forbidden (self-test)"
        if is_loopback(host) or host.lower() == socket.gethostname().lower():
            return True, "local name"
        if any(rule.host and rule.matches(host, rule.port) for rule in self.allow):
            return True, "allowed"
        return False, "name lookup for a host that is not allowed (a DNS query would leave)"



_local = threading.local()


@contextmanager
def bypass() -> Iterator[None]:
    """For the guard's own lookups of configured endpoint names only."""
    previous = getattr(_local, "bypass", False)
    _local.bypass = True
    try:
        yield
    finally:
        _local.bypass = previous


def bypassed() -> bool:
    """True inside :func:`bypass` on this thread: the guard lets the call through."""
    return getattr(_local, "bypass", False)
