"""Backup and restore as an operator does it: pg_dump of the live database plus the
documents and exported checkpoints, restored into a FRESH embedded PostgreSQL, and the
audit chain and its signed checkpoints still verify there (by `manage.py audit_verify`
in a separate process, pointed only at the restored copy)."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.audit.checkpoints import audit_checkpoint_create
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.audit.signing import local_public_key_hex
from rag_platform import backup
from rag_platform.embedded import child_environment, start_postgres
from tests.servers import database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
PROJECT = Path(__file__).resolve().parents[1]


def test_restored_backup_verifies_against_the_signed_checkpoints(tmp_path, member, settings):
    settings.AUDIT_CHECKPOINT_DIR = str(Path(settings.DATA_DIR) / "audit-checkpoints")  # what the backup copies
    for i in range(5):
        audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member, payload={"question": f"q{i}"})
    assert audit_checkpoint_create() is not None
    public_key = local_public_key_hex()

    manifest = backup.create(tmp_path / "backup", database_url=database_url(connection.settings_dict), source_dir=Path(settings.DATA_DIR))
    assert "database.dump" in manifest["files"] and any(f.startswith("audit-checkpoints/") for f in manifest["files"])

    fresh = start_postgres(tmp_path / "fresh-cluster", database="restored")
    try:
        restored_data = tmp_path / "restored-data"
        # Restored by the owner; verified below as the application role (fresh.url).
        backup.restore(tmp_path / "backup", database_url=fresh.owner_url, target_dir=restored_data)
        result = subprocess.run(
            [sys.executable, "manage.py", "audit_verify", "--no-record", "--public-key", public_key,
             "--checkpoint-dir", str(restored_data / "audit-checkpoints")],
            cwd=PROJECT, capture_output=True, text=True, timeout=300,
            env=child_environment(DATABASE_URL=fresh.url, RAG_DATA_DIR=str(restored_data), RAG_AUDIT_CHECKPOINT_DIR=str(restored_data / "audit-checkpoints")),
        )
    finally:
        fresh.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit trail verifies: 5 events through #5, 1 signed heads" in result.stdout, result.stdout


def test_a_damaged_backup_is_refused_before_restoring(tmp_path):
    target = tmp_path / "backup"
    backup.create(target, database_url=database_url(connection.settings_dict), source_dir=Path(settings.DATA_DIR))
    with (target / "database.dump").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(SystemExit, match="damaged"):
        backup.restore(target, database_url="postgresql://unused", target_dir=tmp_path / "x")


def test_a_backup_from_before_an_erasure_is_erased_again_when_restored(tmp_path, member, settings):
    """The dump holds the wrapped key the erasure destroyed; the ledger next to the master key
    makes readers refuse it at once and ``audit_apply_erasures`` destroy it again."""
    from apps.audit.erasure import erase_keys
    from apps.audit.keys import ledger_key_ids

    for i in range(3):
        audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member,
                     payload={"question": f"Where is the Brindlecombe archive {i}?"})
    source = tmp_path / "source-data"  # not the shared data dir: earlier tests' checkpoint files are not this trail's
    source.mkdir()
    backup.create(tmp_path / "backup", database_url=database_url(connection.settings_dict), source_dir=source)
    erasure = erase_keys(subjects=[("user", member.pk)], reason="GDPR request 7", actor=None, what={"username": "member"})
    assert erasure.key_ids and set(erasure.key_ids) <= ledger_key_ids()

    probe = ("from apps.audit.models import AuditEvent, DataKey; from apps.audit.selectors import event_content; "
             "e = AuditEvent.objects.filter(event_type='question.asked').first(); "
             "print('KEYS', DataKey.objects.filter(scope='user').count()); print('TEXT', event_content(e)['question'])")
    fresh = start_postgres(tmp_path / "fresh-cluster", database="restored")
    try:
        restored_data = tmp_path / "restored-data"
        backup.restore(tmp_path / "backup", database_url=fresh.owner_url, target_dir=restored_data)
        env = child_environment(DATABASE_URL=fresh.url, RAG_DATA_DIR=str(restored_data),
                                RAG_AUDIT_ERASURE_LEDGER=settings.AUDIT_ERASURE_LEDGER)

        def manage(*args: str) -> str:
            result = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, capture_output=True, text=True,
                                    timeout=300, env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            return result.stdout

        before = manage("shell", "-c", probe)
        applied = manage("audit_apply_erasures")
        after = manage("shell", "-c", probe)
        verified = manage("audit_verify", "--no-record")
    finally:
        fresh.stop()
    # Restored: the key row is back, but the ledger already makes it unreadable ...
    assert "KEYS 1" in before and "Brindlecombe" not in before and "GDPR request 7" in before, before
    # ... and the re-application destroys it again, with its own chained event.
    assert "1 restored key(s) destroyed again" in applied, applied
    assert "KEYS 0" in after and "Brindlecombe" not in after, after
    assert "audit trail verifies" in verified, verified


def test_a_restore_from_before_an_erasure_loses_the_erased_history_and_documents_again(
        tmp_path, settings, collection, corpus_admin, member):
    """Security review M5: restoring a backup taken before ``erase_user`` and ``erase_document``
    brought back, in the clear, the person's question history and the document's row, chunks,
    vectors and file; the ledger re-applied the keys only. Now ``audit_apply_erasures`` (run
    at every start) deletes them again, and says so."""
    import io as _io

    from apps.answering.erasure import erase_document, erase_user
    from apps.answering.models import AskedQuestion
    from apps.audit.keys import ensure_keys
    from apps.corpus.models import Document
    from apps.ingestion.services import document_ingest, document_upload

    source = tmp_path / "source-data"
    settings.MEDIA_ROOT = str(source / "documents")  # the documents the backup copies
    data = b"# Sluice\n\nThe Harrowgate sluice is opened by the lock keeper at dawn.\n"
    upload = document_upload(collection=collection, uploaded_by=corpus_admin, name="sluice.txt",
                             content=_io.BytesIO(data), size=len(data))
    document_ingest(document_id=upload.document.id)
    document = Document.objects.get(id=upload.document.id)
    assert document.status == "indexed" and (source / "documents" / document.file.name).exists()
    ensure_keys([("document", document.id)])
    audit_record(event_type=EventType.QUESTION_ASKED, outcome=Outcome.ANSWERED, actor=member,
                 payload={"question": "Who opens the Harrowgate sluice?"})
    AskedQuestion.objects.create(user=member, question="Who opens the Harrowgate sluice?",
                                 search_query="Harrowgate sluice", answer="The lock keeper.", outcome="answered")
    backup.create(tmp_path / "backup", database_url=database_url(connection.settings_dict), source_dir=source)
    erase_user(user=member, reason="GDPR request 77", actor=None)
    erase_document(document_id=document.id, reason="records order 2026-77", actor=None)

    probe = ("from apps.answering.models import AskedQuestion; from apps.corpus.models import Chunk, Document; "
             "from django.conf import settings; from pathlib import Path; "
             f"print('HISTORY', AskedQuestion.objects.filter(user_id={member.pk}).count()); "
             f"print('DOCUMENT', Document.objects.filter(id={document.id}).count()); "
             f"print('CHUNKS', Chunk.objects.filter(document_id={document.id}).count()); "
             f"print('FILE', (Path(settings.MEDIA_ROOT) / {document.file.name!r}).exists())")
    fresh = start_postgres(tmp_path / "fresh-cluster", database="restored")
    try:
        restored_data = tmp_path / "restored-data"
        backup.restore(tmp_path / "backup", database_url=fresh.owner_url, target_dir=restored_data)
        env = child_environment(DATABASE_URL=fresh.url, RAG_DATA_DIR=str(restored_data),
                                RAG_AUDIT_ERASURE_LEDGER=settings.AUDIT_ERASURE_LEDGER,
                                RAG_AUDIT_MASTER_KEY_FILE=settings.AUDIT_MASTER_KEY_FILE)

        def manage(*args: str) -> str:
            result = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, capture_output=True, text=True,
                                    timeout=300, env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            return result.stdout

        before = manage("shell", "-c", probe)
        applied = manage("audit_apply_erasures")
        after = manage("shell", "-c", probe)
        again = manage("audit_apply_erasures")
        verified = manage("audit_verify", "--no-record")
    finally:
        fresh.stop()
    assert "HISTORY 1" in before and "DOCUMENT 1" in before and "CHUNKS 1" in before and "FILE True" in before, before
    assert "1 history row(s) and 1 document(s) deleted again" in applied, applied
    assert "HISTORY 0" in after and "DOCUMENT 0" in after and "CHUNKS 0" in after and "FILE False" in after, after
    assert "0 history row(s) and 0 document(s) deleted again" in again, again  # idempotent
    assert "audit trail verifies" in verified, verified
