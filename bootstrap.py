#!/usr/bin/env python3
"""Set up and run the platform with nothing but Python 3.11.5+ (or 3.12) on the machine.

    python3 bootstrap.py run     # install what is missing, start the embedded stack, run the demo, serve
    python3 bootstrap.py test    # install what is missing, run the test suite
    python3 bootstrap.py stop    # stop a running stack
    python3 bootstrap.py install # only install

Installs into ./.venv from requirements/lock.txt (exact versions, --no-deps, so the
resolver cannot pull a CUDA torch or the torchvision that breaks CPU torch). PyTorch's
CPU build is taken from pip's configured sources if it is there (a local wheel folder),
else from PyTorch's CPU index (TORCH_INDEX_URL overrides).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "lock.txt"
TORCH = "torch==2.13.0+cpu"
TORCH_INDEX_URL = os.environ.get("TORCH_INDEX_URL", "https://download.pytorch.org/whl/cpu")
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[bootstrap {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def run(*command: str | Path, check: bool = True) -> int:
    result = subprocess.run([str(c) for c in command], cwd=ROOT)
    if check and result.returncode != 0:
        sys.exit(f"bootstrap: command failed ({result.returncode}): {' '.join(map(str, command))}")
    return result.returncode


def install_key() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(TORCH.encode())
    return digest.hexdigest()


# Debian packages the product uses when present: OCR for scanned PDF pages (issue 3).
# Without them scanned pages fail with "OCR is not installed" instead of being indexed.
SYSTEM_PACKAGES = {"tesseract": ["tesseract-ocr", "tesseract-ocr-eng"], "chromium": ["chromium"]}


_WITHOUT = "scanned PDFs fail with 'OCR is not installed' without tesseract-ocr; browser tests skip without chromium"


def install_system_packages() -> None:
    """apt-get install what is missing, when we may (root or passwordless sudo)."""
    import shutil

    missing = [pkg for binary, pkgs in SYSTEM_PACKAGES.items() if not shutil.which(binary) for pkg in pkgs]
    if not missing:
        return
    if not shutil.which("apt-get"):
        say(f"Not installing {', '.join(missing)} (no apt-get): {_WITHOUT}.")
        return
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        say(f"Not installing {', '.join(missing)} (needs root): {_WITHOUT}. "
            f"To enable them: sudo apt-get install {' '.join(missing)}")
        return
    say(f"Installing {', '.join(missing)} with apt-get (OCR for scanned PDFs, Chromium for the browser tests) …")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok = subprocess.run([*prefix, "apt-get", "update", "-qq"], env=env).returncode == 0 and subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env
    ).returncode == 0
    if not ok:
        say(f"apt-get failed: {_WITHOUT}.")


def install() -> None:
    install_system_packages()
    if not (3, 11, 5) <= sys.version_info[:3] < (3, 13):  # soupsieve (lock) needs 3.11.5; Debian 12 has 3.11.2
        sys.exit(f"bootstrap: Python 3.11.5 or later, or 3.12, is needed (this is {sys.version.split()[0]}); "
                 "the locked packages do not install on older 3.11 releases.")
    if sys.platform != "linux":
        sys.exit("bootstrap: the embedded stack (vLLM on CPU, embedded PostgreSQL) runs on Linux.")
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == install_key():
        say("Environment up to date (.venv).")
        return
    if not venv_python().exists():
        say("Creating the virtual environment in .venv …")
        run(sys.executable, "-m", "venv", VENV)
    pip = (venv_python(), "-m", "pip", "--disable-pip-version-check")
    say(f"Installing PyTorch ({TORCH}, CPU build) …")
    if run(*pip, "install", TORCH, check=False) != 0:
        say(f"Not found in pip's configured sources; trying PyTorch's CPU index {TORCH_INDEX_URL}")
        run(*pip, "install", TORCH, "--extra-index-url", TORCH_INDEX_URL)
    say("Installing the locked dependencies (about 3.5 GB on first run) …")
    run(*pip, "install", "--no-deps", "-r", LOCK)
    say("Installing the project (editable) …")
    run(*pip, "install", "--no-deps", "--no-build-isolation", "-e", ".")
    stamp.write_text(install_key())
    say("Environment ready.")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    rest = argv[1:]
    if command == "install":
        install()
        return 0
    if command == "run":
        install()
        os.execv(venv_python(), [str(venv_python()), "-m", "rag_platform.stack", "run", *rest])
    if command == "stop":
        os.execv(venv_python(), [str(venv_python()), "-m", "rag_platform.stack", "stop"])
    if command == "test":
        install()
        os.chdir(ROOT)
        os.execv(venv_python(), [str(venv_python()), "-m", "pytest", *rest])
    sys.exit(f"usage: python3 bootstrap.py [run|test|stop|install] (got {command!r})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
