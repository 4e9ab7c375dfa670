from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import user_roles_set


class Command(BaseCommand):
    help = "Set a user's roles (staff, corpus_admin, compliance_officer); audited."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("roles", nargs="*")
        parser.add_argument("--by", default="", help="user name of the person making the change")
        parser.add_argument("--reason", default="")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
            by = User.objects.get(username=options["by"]) if options["by"] else None
            added, removed = user_roles_set(user=user, roles=options["roles"], changed_by=by, reason=options["reason"])
        except (User.DoesNotExist, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{user.username}: added {added or 'nothing'}, removed {removed or 'nothing'}")
