"""Place, list or release legal holds: events in the held period are kept past retention."""

from datetime import datetime, time, timezone

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.audit.models import LegalHold
from apps.audit.retention import legal_hold_place, legal_hold_release


def _day(text: str, end: bool) -> datetime:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(f"{text!r} is not a date like 2026-11-25") from None
    return datetime.combine(day, time.max if end else time.min, tzinfo=timezone.utc)


class Command(BaseCommand):
    help = "Legal holds on the audit trail: place FROM TO --reason …, list, or release ID."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        place = sub.add_parser("place", help="keep every event from FROM to TO (UTC days, inclusive)")
        place.add_argument("start")
        place.add_argument("end")
        place.add_argument("--reason", required=True)
        place.add_argument("--by", default="", help="user name placing the hold (recorded)")
        sub.add_parser("list", help="list holds")
        release = sub.add_parser("release", help="release a hold")
        release.add_argument("hold_id", type=int)
        release.add_argument("--by", default="")

    def handle(self, *args, action, **options):
        actor = get_user_model().objects.filter(username=options.get("by") or "").first()
        if action == "place":
            starts, ends = _day(options["start"], False), _day(options["end"], True)
            if ends < starts:
                raise CommandError("the end date is before the start date")
            hold = legal_hold_place(starts_at=starts, ends_at=ends, reason=options["reason"], placed_by=actor)
            self.stdout.write(f"Legal hold {hold.id} placed: events from {starts:%Y-%m-%d} to {ends:%Y-%m-%d} are kept.")
        elif action == "list":
            for hold in LegalHold.objects.order_by("id"):
                state = f"released {hold.released_at:%Y-%m-%d}" if hold.released_at else "active"
                self.stdout.write(f"{hold.id}: {hold.starts_at:%Y-%m-%d}..{hold.ends_at:%Y-%m-%d} {state} — {hold.reason}")
        else:
            hold = LegalHold.objects.filter(id=options["hold_id"], released_at__isnull=True).first()
            if hold is None:
                raise CommandError(f"No active legal hold {options['hold_id']}.")
            legal_hold_release(hold=hold, released_by=actor)
            self.stdout.write(f"Legal hold {hold.id} released.")
