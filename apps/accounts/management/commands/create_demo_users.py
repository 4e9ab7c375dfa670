from django.core.management.base import BaseCommand

from apps.accounts.roles import ROLE_LABELS
from apps.accounts.services import DEMO_USERS, demo_credentials_file, demo_users_ensure


class Command(BaseCommand):
    help = "Create one demo user per role (staff, corpus admin, compliance officer) and print how to sign in."

    def handle(self, *args, **options):
        credentials = demo_users_ensure()
        self.stdout.write("Demo users (passwords kept in %s):" % demo_credentials_file())
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {ROLE_LABELS[role]:<20} user {username:<16} password {credentials[username]}")
