"""Create or check the master key that wraps the audit content's data keys."""

from django.core.management.base import BaseCommand, CommandError

from apps.audit.keys import generate_master_key_file, master_key_path, master_key_problem


class Command(BaseCommand):
    help = ("Check the audit master key (RAG_AUDIT_MASTER_KEY_FILE), or --create it once at install "
            "(mode 0600; never overwrites). Keep a copy in your key store: without it sealed audit content is lost.")

    def add_arguments(self, parser):
        parser.add_argument("--create", action="store_true", help="create the key file if there is none")

    def handle(self, *args, create=False, **options):
        path = master_key_path()
        if create and not path.exists():
            generate_master_key_file(path)
            self.stdout.write(f"audit master key created: {path} (mode 0600)")
        if problem := master_key_problem(path):
            raise CommandError(problem)
        self.stdout.write(f"audit master key {path}: present, mode 0600")
