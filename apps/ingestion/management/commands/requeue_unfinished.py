from django.core.management.base import BaseCommand

from apps.ingestion.services import documents_requeue_unfinished


class Command(BaseCommand):
    help = "Queue again every document left queued or processing (after a restart or a broker outage)."

    def handle(self, *args, **options):
        count = documents_requeue_unfinished()
        self.stdout.write(f"Re-queued {count} unfinished document(s).")
