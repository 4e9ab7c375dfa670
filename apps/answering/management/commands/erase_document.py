"""Erase a document (every version) everywhere, its passages in the audit trail included."""

from django.core.management.base import BaseCommand, CommandError

from apps.answering.erasure import erase_document
from apps.answering.management.officers import officer_named
from apps.audit.erasure import ErasureRefused


class Command(BaseCommand):
    help = ("Delete document ID and all its versions (file, passages, vectors) and destroy their data keys, so the "
            "passages shown in earlier answers are unreadable in the audit trail; writes a signed audit.erased "
            "event. Refused, with nothing deleted, while a legal hold covers any of it.")

    def add_arguments(self, parser):
        parser.add_argument("document_id", type=int)
        parser.add_argument("--reason", required=True, help="why (recorded): e.g. 'records order 2026-14'")
        parser.add_argument("--by", default="", help="user name of the officer carrying it out (recorded)")

    def handle(self, *args, document_id, reason, by="", **options):
        actor = officer_named(by)
        try:
            done = erase_document(document_id=document_id, reason=reason, actor=actor)
        except ErasureRefused as error:
            raise CommandError(str(error)) from None
        recorded = f"recorded as audit event #{done.sequence}" if done.sequence else "no passage of it was ever shown"
        self.stdout.write(f"erased document {document_id}: {done.rows} version(s) deleted, {len(done.key_ids)} data "
                          f"key(s) destroyed; {recorded}")
