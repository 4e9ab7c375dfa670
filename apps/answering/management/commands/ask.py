from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.answering.services import ask_question
from apps.answering.text import answer_as_text


class Command(BaseCommand):
    help = "Ask a question as a given user; prints the answer with citations (audited like the UI)."

    def add_arguments(self, parser):
        parser.add_argument("question")
        parser.add_argument("--user", required=True, help="user name to ask as")

    def handle(self, *args, question, user, **options):
        try:
            asker = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {user}.") from None
        self.stdout.write(f"Q: {question}")
        self.stdout.write(answer_as_text(ask_question(user=asker, question=question)))
