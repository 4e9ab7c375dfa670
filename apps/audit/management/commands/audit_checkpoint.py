from django.core.management.base import BaseCommand, CommandError

from apps.audit.checkpoints import ChainDoesNotVerify, audit_checkpoint_create, checkpoint_file
from apps.audit.signing import SigningKeyUnavailable


class Command(BaseCommand):
    help = "Sign the chain head now (the signer does this every minute); run where the signer runs."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="sign even if the head did not move")

    def handle(self, *args, **options):
        try:
            checkpoint = audit_checkpoint_create(force=options["force"])
        except SigningKeyUnavailable as error:
            raise CommandError(str(error)) from None
        except ChainDoesNotVerify as error:
            raise CommandError(f"the chain does not verify ({error}); no head signed (run audit_verify)") from None
        if checkpoint is None:
            self.stdout.write("the head did not move since the last signed head: nothing to sign")
            return
        self.stdout.write(f"checkpoint {checkpoint.number}: events through #{checkpoint.last_sequence}, "
                          f"written to {checkpoint_file(checkpoint.number)} and the witness file")
