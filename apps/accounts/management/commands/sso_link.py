from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import SsoUserRefused, sso_identity_link


class Command(BaseCommand):
    help = ("Bind an existing account to a single sign-on identity (the provider's issuer and subject); "
            "audited. Single sign-on never takes over an existing account by its user name.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--issuer", required=True, help="the provider's issuer (iss), e.g. OIDC_OP_ISSUER")
        parser.add_argument("--subject", required=True, help="the person's subject (sub) at the provider")
        parser.add_argument("--by", default="", help="user name of the administrator making the change")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
            by = User.objects.get(username=options["by"]) if options["by"] else None
            sso_identity_link(user=user, issuer=options["issuer"], subject=options["subject"], linked_by=by)
        except (User.DoesNotExist, SsoUserRefused) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{user.username} signs in as {options['subject']} at {options['issuer']}")
