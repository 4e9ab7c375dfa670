import sys

from django.core.management.base import BaseCommand

from apps.ingestion.housekeeping import documents_check


class Command(BaseCommand):
    help = ("Report documents and files that need attention: expired claims, documents waiting for an "
            "unreachable queue, stored files no document points to (and documents whose file is gone), "
            "superseded versions whose successor was removed. Exit status 1 if anything is listed.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=1000, help="list at most this many of each kind")

    def handle(self, *args, limit, **options):
        report = documents_check(limit=limit)
        sections = [
            ("Claims whose lease expired (housekeeping hands them to a new task)",
             [f"#{i} {title} ({status})" for i, title, status in report.stranded_claims]),
            ("Waiting for an unreachable queue (housekeeping sends them again)",
             [f"#{i} {title}" for i, title in report.waiting]),
            ("Stored files no document points to", report.orphan_files),
            ("Documents whose stored file is missing", [f"#{i} {title}" for i, title in report.missing_files]),
            ("Superseded versions without a successor (not searchable: upload the file again or delete them)",
             [f"#{i} {title}" for i, title in report.superseded_without_successor]),
        ]
        for heading, lines in sections:
            more = f" (first {limit})" if len(lines) >= limit else ""
            self.stdout.write(f"{heading}: {len(lines)}{more}")
            for line in lines:
                self.stdout.write(f"  {line}")
        if not report.clean:
            sys.exit(1)
        self.stdout.write("Everything is accounted for.")
