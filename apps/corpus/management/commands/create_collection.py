from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.corpus.models import Collection
from apps.corpus.services import collection_create


class Command(BaseCommand):
    help = "Create a collection (no-op if it exists) readable by the given groups, managed by others."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--readers", nargs="*", default=["staff"], help="group names that may read it")
        parser.add_argument("--managers", nargs="*", default=["corpus_admin"],
                            help="group names that may upload, delete and grant (default: corpus_admin)")
        parser.add_argument("--description", default="")
        parser.add_argument("--pii-policy", choices=Collection.PiiPolicy.values, default=Collection.PiiPolicy.INDEX,
                            help="personal data in documents: index (as is, counted), mask (placeholders in "
                                 "the index), refuse (the document fails)")

    def handle(self, *args, name, readers, managers, description, pii_policy, **options):
        if Collection.objects.filter(name__iexact=name.strip()).exists():
            self.stdout.write(f"Collection “{name}” exists.")
            return
        groups = list(Group.objects.filter(name__in=readers))
        manager_groups = list(Group.objects.filter(name__in=managers))
        missing = (set(readers) - {g.name for g in groups}) | (set(managers) - {g.name for g in manager_groups})
        if missing:
            raise CommandError(f"No such group: {', '.join(sorted(missing))}")
        try:
            collection = collection_create(name=name, description=description, created_by=None, reader_groups=groups,
                                           manager_groups=manager_groups, pii_policy=pii_policy)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Created collection “{collection.name}” (id {collection.id}, personal data: "
                          f"{collection.pii_policy}).")
