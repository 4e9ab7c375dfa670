"""Process-level promises: the stdlib `platform` is never shadowed, every process starts
offline, and the test suite itself cannot open a non-loopback connection."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_socket import SocketConnectBlockedError, socket_allow_hosts

from rag_platform.process.offline import OFFLINE_ENVIRONMENT, offline_environment_status

PROJECT = Path(__file__).resolve().parents[1]
CHECK = "import platform; assert platform.system() and platform.__file__.endswith('/platform.py'), platform.__file__; print('stdlib', platform.system())"


def test_import_platform_is_the_standard_library_under_pytest():
    import platform

    assert platform.system() == "Linux"
    assert Path(platform.__file__).parent != PROJECT / "platform"


@pytest.mark.slow
def test_import_platform_is_the_standard_library_under_manage_py():
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", CHECK], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "stdlib Linux" in out.stdout


@pytest.mark.slow
def test_import_platform_is_the_standard_library_under_celery():
    # `celery report` loads the app (and Django settings) and reports platform.system().
    out = subprocess.run([sys.executable, "-m", "celery", "-A", "rag_platform.celery_app", "report"],
                         cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "system:Linux" in out.stdout


@pytest.mark.slow
def test_offline_switches_are_in_force_here_and_in_children():
    assert all(offline_environment_status().values())
    code = "import os, rag_platform.settings; print(os.environ['HF_HUB_OFFLINE'], os.environ['VLLM_NO_USAGE_STATS'], os.environ['SCARF_NO_ANALYTICS'])"
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENVIRONMENT}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["1", "1", "true"], out.stderr


def test_suite_refuses_connections_to_a_forbidden_address_before_any_packet():
    """127.0.0.2 is loopback, so even a broken guard sends nothing off the machine; here it
    is marked forbidden, and the connection must be refused before it is attempted."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
        client = socket.socket()
        with pytest.raises(SocketConnectBlockedError):
            client.connect(("127.0.0.2", port))
        client.close()
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing arrived
    finally:
        socket_allow_hosts(["127.0.0.1", "::1", "localhost"], allow_unix_socket=True)
        listener.close()
