"""The client's address behind trusted proxies (security review, finding 8).

``X-Forwarded-For`` is a list any client can write; only the entries appended by proxies we
run can be believed. Walking it from the right, starting at the connection's peer
(``REMOTE_ADDR``), every hop that is a configured proxy (``RAG_TRUSTED_PROXIES``: addresses
or networks, e.g. ``10.0.0.0/8,fd00::/8``) vouches for the one before it; the first hop that
is not a proxy is the client. With no proxy configured, or a peer that is not one, the
header is ignored. The audit trail and sign-in throttling (django-axes,
``AXES_CLIENT_IP_CALLABLE``) both use this one function, so a lockout behind an ingress is
per person, not one global lockout, and a client cannot pick the address it is throttled as.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _parse(value: str):
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_address(request) -> str:
    peer = _parse(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return request.META.get("REMOTE_ADDR", "")[:45]
    proxies = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))
    client = peer
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    while proxies and any(client in net for net in proxies if net.version == client.version) and hops:
        candidate = _parse(hops.pop())
        if candidate is None:  # garbage from a client: stop at the last address a proxy vouched for
            break
        client = candidate
    return str(client)[:45]
