"""Titles keep their folders; versions, collection names and stored files hold under races
(issue 13). A race is staged for real: another connection holds an uncommitted row while
this one writes, so PostgreSQL's constraints decide, as they would between two web threads."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction

from apps.corpus.models import Collection, Document
from apps.corpus.services import collection_create
from apps.ingestion.archives import files_upload
from apps.ingestion.housekeeping import documents_check
from tests.factories import CollectionFactory
from tests.uploads import upload as _upload


@pytest.mark.django_db
def test_folder_and_archive_titles_keep_their_folders(tmp_path, corpus_admin, capsys):
    """2023/report.txt and 2024/report.txt are two documents, not two versions of one."""
    target = CollectionFactory(name="Reports", created_by=corpus_admin)
    for year in ("2023", "2024"):
        (tmp_path / "reports" / year).mkdir(parents=True)
        (tmp_path / "reports" / year / "report.txt").write_text(f"The {year} annual report of the audit committee.\n")
    call_command("ingest", str(tmp_path / "reports"), "--collection", "Reports")
    docs = {d.title: d for d in Document.objects.filter(collection=target)}
    assert set(docs) == {"2023/report.txt", "2024/report.txt"}
    assert all(d.version == 1 and d.replaces_id is None and d.status == Document.Status.QUEUED for d in docs.values())

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("minutes/2023/report.txt", "Minutes 2023: the board met four times.\n")
        z.writestr("minutes/2024/report.txt", "Minutes 2024: the board met six times.\n")
    size = archive.tell()
    archive.seek(0)
    results = files_upload(collection=target, uploaded_by=corpus_admin, name="minutes.zip", content=archive, size=size)
    assert sorted(r.document.title for r in results) == ["minutes/2023/report.txt", "minutes/2024/report.txt"]
    assert all(r.created and r.document.version == 1 for r in results)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ingest_wait_counts_a_superseded_version_as_finished(worker, corpus_admin, tmp_path):
    """Two files of one import with one title: the first becomes version 1, superseded by
    the second; `--wait` used to wait for it to be indexed or failed, forever."""
    CollectionFactory(name="Versions", created_by=corpus_admin)
    for folder, text in (("old", "Expenses are approved by the line manager."), ("new", "Expenses are approved by finance.")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "expenses.txt").write_text(text + "\n")
    out = io.StringIO()
    call_command("ingest", str(tmp_path / "old" / "expenses.txt"), str(tmp_path / "new" / "expenses.txt"),
                 "--collection", "Versions", "--wait", "--timeout", "150", stdout=out)
    statuses = sorted(Document.objects.filter(collection__name="Versions").values_list("version", "status"))
    assert statuses == [(1, Document.Status.SUPERSEDED), (2, Document.Status.INDEXED)], out.getvalue()
    assert "replaced by a newer version" in out.getvalue()


@contextmanager
def _uncommitted(write):
    """``write`` runs in another connection's open transaction until the block ends (then it
    commits): what a concurrent request looks like to this one."""
    written, release, errors = threading.Event(), threading.Event(), []

    def run():
        try:
            with transaction.atomic():
                write()
                written.set()
                release.wait(60)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
            written.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert written.wait(60) and not errors, errors
    try:
        yield release
    finally:
        release.set()
        thread.join(60)


def _meanwhile(action):
    """Run ``action`` in a thread (it may block on the other transaction's row)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = action()
        except Exception as error:  # noqa: BLE001 - inspected by the test
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_uploads_of_a_new_title_at_once_become_versions_1_and_2(corpus_admin):
    target = CollectionFactory(name="Race", created_by=corpus_admin)
    with _uncommitted(lambda: Document.objects.create(
            collection=target, title="policy.txt", sha256="a" * 64, size_bytes=10, file_type=".txt", file="x")) as release:
        thread, outcome = _meanwhile(lambda: _upload(target, corpus_admin, "policy.txt", b"The policy, second upload.\n"))
        time.sleep(1.5)  # the upload now waits for the other transaction's version 1
        release.set()
    thread.join(60)
    assert "error" not in outcome, outcome
    versions = sorted(Document.objects.filter(collection=target, title="policy.txt").values_list("version", flat=True))
    assert versions == [1, 2]
    second = outcome["value"].document
    assert second.version == 2 and second.replaces.version == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("second_name", ["Finance", "finance"])
def test_collection_names_are_unique_whatever_the_case_also_at_the_same_moment(corpus_admin, second_name):
    """A concurrent create used to give a 500 (exact name) or a second collection (other case)."""
    with _uncommitted(lambda: Collection.objects.create(name="Finance")) as release:
        thread, outcome = _meanwhile(lambda: collection_create(name=second_name, created_by=corpus_admin))
        time.sleep(1.5)
        release.set()
    thread.join(60)
    assert isinstance(outcome.get("error"), ValidationError), outcome
    assert "already exists" in " ".join(outcome["error"].messages)
    assert Collection.objects.filter(name__iexact="finance").count() == 1
    with pytest.raises(ValidationError):
        collection_create(name="FINANCE", created_by=corpus_admin)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_lost_duplicate_race_leaves_no_stored_file(corpus_admin, tmp_path, settings):
    """The same bytes uploaded twice at once: one document, and the loser's stored copy is
    deleted (it used to stay on disk with no document pointing to it)."""
    import hashlib

    settings.MEDIA_ROOT = tmp_path / "documents"  # only this test's files
    target = CollectionFactory(name="Dupes", created_by=corpus_admin)
    data = b"Visitors are escorted at all times.\n"
    sha = hashlib.sha256(data).hexdigest()
    assert documents_check().orphan_files == []
    with _uncommitted(lambda: _upload(target, corpus_admin, "visitors.txt", data)) as release:
        thread, outcome = _meanwhile(lambda: _upload(target, corpus_admin, "visitors-copy.txt", data))
        time.sleep(1.5)
        release.set()
    thread.join(60)
    assert "error" not in outcome and not outcome["value"].created, outcome
    assert Document.objects.filter(collection=target, sha256=sha).count() == 1
    assert documents_check().orphan_files == []


@pytest.mark.django_db
def test_documents_check_reports_stranded_claims_orphan_files_and_lonely_superseded(collection, corpus_admin, settings, tmp_path):
    from datetime import timedelta
    from pathlib import Path

    from django.utils import timezone

    settings.MEDIA_ROOT = tmp_path / "documents"  # only this test's files
    stranded = _upload(collection, corpus_admin, "stranded.txt", b"Parsed by a worker that died.\n").document
    Document.objects.filter(id=stranded.id).update(status=Document.Status.PROCESSING, claim_task_id="dead-task",
                                                   lease_expires_at=timezone.now() - timedelta(minutes=5))
    lonely = _upload(collection, corpus_admin, "old.txt", b"An old version whose successor was removed.\n").document
    Document.objects.filter(id=lonely.id).update(status=Document.Status.SUPERSEDED)
    orphan = Path(settings.MEDIA_ROOT) / str(collection.id) / "zz" / ("z" * 64)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left behind")
    report = documents_check()
    assert [r[0] for r in report.stranded_claims] == [stranded.id]
    assert [r[0] for r in report.superseded_without_successor] == [lonely.id]
    assert report.orphan_files == [orphan.relative_to(settings.MEDIA_ROOT).as_posix()]
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_code:
        call_command("documents_check", stdout=out)
    assert exit_code.value.code == 1
    text = out.getvalue()
    assert "stranded.txt" in text and "old.txt" in text and orphan.name in text
    orphan.unlink()
