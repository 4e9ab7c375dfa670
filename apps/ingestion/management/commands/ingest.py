import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, close_old_connections

from apps.corpus.models import Collection, Document
from apps.ingestion.archives import files_upload
from apps.ingestion.parsing import ARCHIVE_EXTENSIONS, SUPPORTED_EXTENSIONS
from apps.ingestion.services import UploadRejected, bulk_enqueue


class Command(BaseCommand):
    help = "Upload files or folders into a collection; the Celery workers index them."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--collection", required=True)
        parser.add_argument("--wait", action="store_true",
                            help="wait until every file is indexed, failed or replaced by a newer version")
        parser.add_argument("--timeout", type=float, default=900)

    def handle(self, *args, paths, collection, wait, timeout, **options):
        try:
            target = Collection.objects.get(name=collection)
        except Collection.DoesNotExist:
            raise CommandError(f"No collection named “{collection}”. Create it with manage.py create_collection.") from None
        files: list[tuple[Path, str]] = []  # (file, its title: the path inside the folder given)
        for path in paths:
            if path.is_dir():
                files += [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
                          if p.is_file() and p.suffix.lower() in {*SUPPORTED_EXTENSIONS, *ARCHIVE_EXTENSIONS}]
            elif path.is_file():
                files.append((path, path.name))
            else:
                raise CommandError(f"{path}: no such file or folder")
        document_ids = []
        with bulk_enqueue():  # small text files go to the workers in groups, not one task each
            for path, name in files:
                with path.open("rb") as handle:
                    outcomes = files_upload(collection=target, uploaded_by=None, name=name, content=handle, size=path.stat().st_size)
                for result in outcomes:
                    if isinstance(result, UploadRejected):
                        self.stderr.write(f"  refused  {result}")
                        continue
                    document_ids.append(result.document.id)
                    self.stdout.write(f"  {'queued ' if result.created else 'already'}  {result.name}")
        if wait and document_ids:
            self._wait(document_ids, timeout)

    def _wait(self, document_ids, timeout):
        deadline = time.monotonic() + timeout
        # Superseded: a later file of this import (or another upload) is its next version.
        done_states = {Document.Status.INDEXED, Document.Status.FAILED, Document.Status.SUPERSEDED}
        last = None
        while True:
            try:
                rows = list(Document.objects.filter(id__in=document_ids).values("title", "status", "failure_reason", "chunk_count"))
            except (OperationalError, InterfaceError) as error:  # a database restart: the files are queued, keep waiting
                if time.monotonic() > deadline:
                    raise CommandError(f"Timed out waiting for the database ({error}); the files are queued.") from None
                self.stderr.write(f"  database unavailable ({str(error).splitlines()[0][:120]}); still waiting…")
                close_old_connections()
                time.sleep(2)
                continue
            finished = [r for r in rows if r["status"] in done_states]
            if len(finished) != last:
                last = len(finished)
                width = 30
                filled = int(width * len(finished) / max(1, len(rows)))
                self.stdout.write(f"  [{'#' * filled}{'.' * (width - filled)}] {len(finished)}/{len(rows)} done")
            if len(finished) == len(rows):
                break
            if time.monotonic() > deadline:
                raise CommandError("Timed out waiting for ingestion; is a Celery worker running?")
            time.sleep(0.5)
        for r in rows:
            detail = {Document.Status.INDEXED: f"{r['chunk_count']} chunks",
                      Document.Status.SUPERSEDED: "replaced by a newer version"}.get(r["status"], r["failure_reason"])
            self.stdout.write(f"  {r['status']:<10} {r['title']}: {detail}")
