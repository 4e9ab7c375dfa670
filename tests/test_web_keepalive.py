"""The web server as the stack runs it keeps an idle connection open for a person's pause
between questions (bench-chaos: with gunicorn's 2 s default, 1 question in ~300 met a reset
on a reused connection and never reached the server)."""

import http.client
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection

from rag_platform.commands import web_command
from rag_platform.embedded import child_environment, free_loopback_port
from tests.servers import database_url, stop_process_group, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
PROJECT = Path(__file__).resolve().parents[1]


def test_a_connection_idle_for_a_few_seconds_is_still_served(tmp_path):
    port = free_loopback_port()
    log = tmp_path / "web.log"
    web = subprocess.Popen(web_command(port=port), cwd=PROJECT, stdin=subprocess.DEVNULL, stdout=log.open("ab"),
                           stderr=subprocess.STDOUT, start_new_session=True,
                           env=child_environment(DATABASE_URL=database_url(connection.settings_dict)))
    try:
        def healthy():
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/healthz")
                return probe.getresponse().status == 200
            except OSError:
                return False

        wait_until(healthy, timeout=120, what="gunicorn", log=log)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("Connection", "").lower() != "close"
        socket_before = conn.sock
        time.sleep(4)  # a person reading the answer
        conn.request("GET", "/healthz")
        again = conn.getresponse()
        again.read()
        assert again.status == 200 and conn.sock is socket_before  # the same connection, not a new one
    finally:
        stop_process_group(web)
