from django.core.management.base import BaseCommand, CommandError

from apps.audit.checkpoints import audit_checkpoint_create, checkpoint_file


class Command(BaseCommand):
    help = "Sign a checkpoint of the audit chain now (Celery beat does this periodically)."

    def handle(self, *args, **options):
        checkpoint = audit_checkpoint_create()
        if checkpoint is None:
            raise CommandError("the chain does not verify; no checkpoint signed (run audit_verify)")
        self.stdout.write(f"checkpoint {checkpoint.number}: events through #{checkpoint.last_sequence}, "
                          f"written to {checkpoint_file(checkpoint.number)}")
