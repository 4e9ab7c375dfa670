"""Writers for collections. Document writes live in apps.ingestion.services."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Collection


def collection_create(
    *, name: str, created_by, description: str = "", reader_groups: Iterable[Group] = ()
) -> Collection:
    name = name.strip()
    if not name:
        raise ValidationError("A collection needs a name.")
    if Collection.objects.filter(name__iexact=name).exists():
        raise ValidationError(f"A collection named “{name}” already exists.")
    with transaction.atomic():
        collection = Collection.objects.create(
            name=name, description=description, created_by=created_by
        )
        groups = list(reader_groups)
        collection.reader_groups.set(groups)
        audit_record(
            event_type=EventType.COLLECTION_CREATED,
            outcome=Outcome.SUCCESS,
            actor=created_by,
            payload={
                "collection_id": collection.id,
                "name": collection.name,
                "reader_groups": sorted(g.name for g in groups),
            },
        )
    return collection
