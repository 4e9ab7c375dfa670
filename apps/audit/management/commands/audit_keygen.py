"""Create the audit signing key once (at install), and print what to pin.

    manage.py audit_keygen            # creates <data dir>/keys/audit-signing.key (0600), refuses to overwrite
    manage.py audit_keygen --show     # prints the public key and fingerprint of the existing key (signer only)
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit import signing


class Command(BaseCommand):
    help = "Create the audit signing key (once) and print its public key and fingerprint to pin."

    def add_arguments(self, parser):
        parser.add_argument("--key-file", help="where to write it (default RAG_AUDIT_SIGNING_KEY_FILE or <data>/keys)")
        parser.add_argument("--show", action="store_true", help="print the existing key's public half")

    def handle(self, *args, **options):
        path = Path(options["key_file"] or signing.key_file_path())
        if options["show"]:
            if not path.exists():
                raise CommandError(f"{path} does not exist")
            public_hex = signing.public_key_hex(signing._parse_private(path.read_bytes()).public_key())
        else:
            if path.exists():
                raise CommandError(f"{path} exists: a signing key is never replaced silently (rotate with audit_rotate_key)")
            public_hex = signing.generate_key_file(path)
            self.stdout.write(f"audit signing key written to {path} (mode 0600); give it to the signer only")
        self.stdout.write(f"public key:  {public_hex}")
        self.stdout.write(f"fingerprint: {signing.fingerprint(public_hex)}")
        self.stdout.write("pin it: RAG_AUDIT_PIN=<either> for the platform, "
                          "`manage.py audit_verify --public-key <either>` for auditors")
