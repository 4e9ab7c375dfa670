"""Rotate the audit signing key: a signed, audited event (signer only).

    manage.py audit_rotate_key NEW_KEY_FILE

Writes an ``audit.key_rotated`` event, then signs a head with the *old* key that names the
new public key (``next_public_key``), so a verifier who pinned the old key trusts the new
one from that head on; then the new key replaces the old one (kept as ``*.retired``).
"""

import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.audit import signing
from apps.audit.checkpoints import audit_checkpoint_create
from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record


class Command(BaseCommand):
    help = "Rotate the audit signing key (signed by the old key, recorded in the trail)."

    def add_arguments(self, parser):
        parser.add_argument("new_key_file", help="the new key (as written by audit_keygen --key-file)")

    def handle(self, *args, new_key_file, **options):
        try:
            old = signing.load_private_key()
        except signing.SigningKeyUnavailable as error:
            raise CommandError(str(error)) from None
        new_path = Path(new_key_file)
        new_public = signing.public_key_hex(signing._parse_private(new_path.read_bytes()).public_key())
        old_public = signing.public_key_hex(old.public_key())
        if new_public == old_public:
            raise CommandError("the new key is the current key")
        audit_record(event_type=EventType.KEY_ROTATED, outcome=Outcome.SUCCESS,
                     payload={"from": signing.fingerprint(old_public), "to": signing.fingerprint(new_public)})
        head = audit_checkpoint_create(force=True, extra={"next_public_key": new_public})
        key_path = signing.key_file_path()
        if signing.key_from_environment():
            self.stdout.write("RAG_AUDIT_SIGNING_KEY is set: replace its value with the new key yourself")
        else:
            shutil.copy2(key_path, key_path.with_name(f"{key_path.name}.retired-{timezone.now():%Y%m%dT%H%M%S}"))
            shutil.copyfile(new_path, key_path)
            key_path.chmod(0o600)
        self.stdout.write(f"signed head {head.number} (old key) names the new key {signing.fingerprint(new_public)}; "
                          "the signer signs with it from now on. Pin the new key for new verifiers.")
