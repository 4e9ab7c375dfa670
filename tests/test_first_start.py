"""A newcomer's first start: what used to stop it or raise a false alarm (issue 21).

The whole first start, run as the README says from a fresh clone, is .ci/first_start.py;
these are the fast checks of its parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apps.audit import signing
from apps.audit.chain import canonical_json
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_stack_creates_its_keys_before_django_is_set_up(tmp_path):
    """The stack process makes the signing and master keys with no Django settings configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_AUDIT", "DJANGO_"))}
    env["RAG_DATA_DIR"] = str(tmp_path / "var")
    code = ("import argparse\nfrom rag_platform.stack import Stack\n"
            "stack = Stack(argparse.Namespace())\nstack.ensure_signing_key()\nstack.ensure_master_key()\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    keys = tmp_path / "var" / "keys"
    assert (keys / "audit-master.key").stat().st_mode & 0o777 == 0o600
    pin = (keys / "audit-signing.pub").read_text().strip()
    assert f"PIN THIS PUBLIC KEY: {pin}" in result.stdout
    # the command printed is the one that works from another shell, as written
    assert f"manage.py audit_verify --public-key {pin}" in result.stdout


@pytest.mark.slow
def test_the_repository_tracks_no_witness_file_and_ignores_it():
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    assert not [path for path in tracked if "witness" in path and path.endswith(".jsonl")]
    ignored = subprocess.run(["git", "check-ignore", "-q", "var-witness/audit-witness.jsonl"], cwd=PROJECT)
    assert ignored.returncode == 0


def _foreign_head(key: Ed25519PrivateKey, number: int) -> dict:
    public_hex = signing.public_key_hex(key.public_key())
    statement = {"format": "rag-audit-checkpoint/2", "number": number, "last_sequence": number, "count": number,
                 "head_hash": "0" * 64, "previous": "0" * 64, "time": "2026-12-01T00:00:00.000000+00:00",
                 "public_key": public_hex, "key_id": signing.key_id(public_hex)}
    return {"statement": statement, "signature": key.sign(canonical_json(statement).encode()).hex(),
            "public_key": public_hex}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_witness_file_from_another_installation_is_named_as_such(settings):
    """Heads another key signed, in this installation's witness file: one line naming the file
    and both keys, so an operator can tell a mix-up from forgery; nothing in it is trusted."""
    from apps.audit.checkpoints import audit_checkpoint_create
    from apps.audit.verification import audit_verify_all

    other = Ed25519PrivateKey.generate()
    witness = Path(settings.AUDIT_WITNESS_FILE)
    witness.parent.mkdir(parents=True)
    witness.write_text("".join(json.dumps(_foreign_head(other, n)) + "\n" for n in (1, 2)))
    audit_record(event_type=EventType.COLLECTION_CREATED, outcome=Outcome.SUCCESS, payload={})
    audit_checkpoint_create()

    report = audit_verify_all(public_key_hex=settings.AUDIT_PUBLIC_KEY)

    assert not report.ok
    other_fingerprint = signing.fingerprint(signing.public_key_hex(other.public_key()))
    named = [p for p in report.problems if str(witness) in p]
    assert len(named) == 1, report.problems
    assert other_fingerprint in named[0] and signing.fingerprint(settings.AUDIT_PUBLIC_KEY) in named[0]
    assert "another installation" in named[0]
    assert not [p for p in report.problems if "(witness): not signed by the pinned key" in p]
