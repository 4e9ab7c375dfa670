"""Erase a person's questions and answers everywhere (audit trail included, chain intact)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.answering.erasure import erase_user
from apps.answering.management.officers import officer_named
from apps.audit.erasure import ErasureRefused


class Command(BaseCommand):
    help = ("Destroy USERNAME's data key, so every question, search and answer of theirs in the audit trail (and its "
            "exports from now on) is unreadable, and delete their question history; writes a signed audit.erased "
            "event. Refused while a legal hold covers any of it.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="why (recorded): e.g. 'GDPR Art. 17 request #123'")
        parser.add_argument("--by", default="", help="user name of the officer carrying it out (recorded)")

    def handle(self, *args, username, reason, by="", **options):
        users = get_user_model().objects
        user = users.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        actor = officer_named(by)
        try:
            done = erase_user(user=user, reason=reason, actor=actor)
        except ErasureRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"erased {username}: {len(done.key_ids)} data key(s) destroyed, {done.rows} history row(s) "
                          f"deleted; recorded as audit event #{done.sequence}")
