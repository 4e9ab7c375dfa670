"""The keys the embedded stack creates at its first start, and what it tells the operator.

Runs in the stack's own process, before any Django process exists: nothing here may import
a Django model (only ``apps.audit.crypto`` and ``apps.audit.signing``, which read settings
lazily or not at all).

* the audit signing key (Ed25519), printed once with its fingerprint to pin, and saved as
  ``keys/audit-signing.pub`` beside it;
* the master key that wraps the audit content's data keys (mode 0600);
* the exact ``audit_verify`` command that works from another shell;
* a warning when the witness file holds heads from another installation's key.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rag_platform.process.runtime import PROJECT_DIR, data_dir


def ensure_signing_key(data: Path, say: Callable[[str], None]) -> tuple[Path, str]:
    """Create the signing key if there is none; returns (key file, pin or "")."""
    key_file = Path(os.environ.get("RAG_AUDIT_SIGNING_KEY_FILE") or data / "keys" / "audit-signing.key")
    public_file = data / "keys" / "audit-signing.pub"
    if not key_file.exists() and not os.environ.get("RAG_AUDIT_SIGNING_KEY"):
        from apps.audit.signing import fingerprint, generate_key_file

        public_hex = generate_key_file(key_file)
        public_file.write_text(public_hex + "\n")
        say(f"Audit signing key created ({key_file}, only the signer reads it). PIN THIS PUBLIC KEY: {public_hex} "
            f"({fingerprint(public_hex)}); keep a copy off this machine (also saved in {public_file}).")
    pin = os.environ.get("RAG_AUDIT_PIN") or (public_file.read_text().strip() if public_file.exists() else "")
    if pin:
        say(f"Verify the audit trail from another shell with: {verify_command(pin)}")
        if problem := foreign_witness_heads(pin):
            say(f"WARNING: {problem}")
    return key_file, pin


def ensure_master_key(data: Path, say: Callable[[str], None]) -> None:
    key_file = Path(os.environ.get("RAG_AUDIT_MASTER_KEY_FILE") or data / "keys" / "audit-master.key")
    if not key_file.exists():
        from apps.audit.crypto import create_key_file

        create_key_file(key_file)
        say(f"Audit master key created ({key_file}, mode 0600). Keep a copy in your key store: without it the "
            "questions, answers and passages in the audit trail cannot be read; it is not in backups.")


def verify_command(pin: str) -> str:
    """The command an operator types, as written (the pin inline: it is public)."""
    python = Path(sys.executable)
    if python.is_relative_to(PROJECT_DIR):
        python = python.relative_to(PROJECT_DIR)
    return f"{python} manage.py audit_verify --public-key {pin}"


def witness_file() -> Path:
    """Where the signer appends signed heads (the same default as ``rag_platform.conf.audit``)."""
    data = data_dir()
    return Path(os.environ.get("RAG_AUDIT_WITNESS_FILE") or data.parent / f"{data.name}-witness" / "audit-witness.jsonl")


def foreign_witness_heads(pin: str) -> str:
    """Why the witness file holds heads whose key is not ``pin``, or "" when it holds none."""
    from apps.audit.signing import fingerprint, matches_pin

    path = witness_file()
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    keys = set()
    for line in lines:
        try:
            keys.add(json.loads(line).get("public_key", ""))
        except (json.JSONDecodeError, AttributeError):
            continue
    others = sorted(fingerprint(k) for k in keys if k and not matches_pin(k, pin))
    if not others:
        return ""
    return (f"the witness file {path} holds signed heads from another key ({', '.join(others)}), not this "
            f"installation's: audit_verify will report them. Move that file away if it came from another "
            f"installation; if it did not, someone signed heads with another key.")
