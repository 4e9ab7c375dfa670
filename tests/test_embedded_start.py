"""The embedded PostgreSQL starts from a minimal environment (``env -i``, cron, a container)."""

import os

from rag_platform import embedded


def test_as_root_a_minimal_path_gains_the_directory_of_useradd(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    embedded._system_tools_on_path()
    assert os.environ["PATH"].split(os.pathsep)[:2] == ["/usr/bin", "/bin"]
    assert "/usr/sbin" in os.environ["PATH"].split(os.pathsep)


def test_another_user_keeps_the_path_as_it_is(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    embedded._system_tools_on_path()
    assert os.environ["PATH"] == "/usr/bin:/bin"
