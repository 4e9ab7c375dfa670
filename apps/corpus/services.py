"""Writers for collections and their grants. Document writes live in apps.ingestion.services."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from apps.audit.models import EventType, Outcome
from apps.audit.services import audit_record
from apps.corpus.models import Collection, CollectionGrant
from apps.corpus.selectors import collections_manageable_by

Level = CollectionGrant.Level


def collection_create(
    *, name: str, created_by, description: str = "", reader_groups: Iterable[Group] = (),
    manager_groups: Iterable[Group] = (), pii_policy: str = Collection.PiiPolicy.INDEX,
) -> Collection:
    """A new collection; its creator gets a manage grant (an ordinary grant row, revocable
    like any other). ``reader_groups`` get read grants and ``manager_groups`` manage grants,
    written (and audited) with the collection."""
    name = name.strip()
    if not name:
        raise ValidationError("A collection needs a name.")
    if len(name) > 200:
        raise ValidationError("A collection name has at most 200 characters.")
    if Collection.objects.filter(name__iexact=name).exists():
        raise ValidationError(f"A collection named “{name}” already exists.")
    if pii_policy not in Collection.PiiPolicy.values:
        raise ValidationError(f"Unknown personal-data policy “{pii_policy}” (use index, mask or refuse).")
    groups = list(reader_groups)
    managers = list(manager_groups)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a concurrent create of the same name (any case) loses here
                collection = Collection.objects.create(name=name, description=description, created_by=created_by,
                                                       pii_policy=pii_policy)
        except IntegrityError:
            raise ValidationError(f"A collection named “{name}” already exists.") from None
        audit_record(
            event_type=EventType.COLLECTION_CREATED,
            outcome=Outcome.SUCCESS,
            actor=created_by,
            payload={
                "collection_id": collection.id,
                "name": collection.name,
                "reader_groups": sorted(g.name for g in groups),
                "manager_groups": sorted(g.name for g in managers),
                "pii_policy": collection.pii_policy,
            },
        )
        if created_by is not None:
            _grant(collection=collection, user=created_by, level=Level.MANAGE, granted_by=created_by)
        for group in groups:
            _grant(collection=collection, group=group, level=Level.READ, granted_by=created_by)
        for group in managers:
            _grant(collection=collection, group=group, level=Level.MANAGE, granted_by=created_by)
    return collection


def _principal_payload(user, group) -> dict:
    if (user is None) == (group is None):
        raise ValidationError("A grant names exactly one user or one group.")
    if user is not None:
        return {"user_id": user.pk, "username": user.get_username()}
    return {"group_id": group.pk, "group": group.name}


def _require_manager(collection: Collection, actor) -> None:
    # ``actor`` None: a management command run by the operator.
    if actor is not None and not collections_manageable_by(actor).filter(id=collection.id).exists():
        raise PermissionDenied("You may not change who can use this collection.")


def _grant(*, collection, user=None, group=None, level, granted_by) -> CollectionGrant:
    principal = _principal_payload(user, group)
    if level not in Level.values:
        raise ValidationError(f"Unknown access level “{level}” (use read, ingest or manage).")
    lookup = {"user": user} if user is not None else {"group": group}
    grant = CollectionGrant.objects.select_for_update().filter(collection=collection, **lookup).order_by("id").first()
    before = grant.level if grant else None
    if grant is None:
        grant = CollectionGrant.objects.create(collection=collection, level=level, granted_by=granted_by, **lookup)
    elif grant.level != level:
        grant.level, grant.granted_by = level, granted_by
        grant.save(update_fields=["level", "granted_by"])
    else:
        return grant  # nothing changed, nothing to audit
    audit_record(
        event_type=EventType.ACCESS_GRANTED,
        outcome=Outcome.SUCCESS,
        actor=granted_by,
        payload={"collection_id": collection.id, "collection": collection.name, **principal,
                 "level": level, "previous_level": before},
    )
    return grant


def collection_grant(*, collection: Collection, level: str, granted_by, user=None, group=None) -> CollectionGrant:
    """Give a user or a group ``level`` on ``collection`` (replacing a grant they held).
    Only a manager of the collection may; audited in the same transaction."""
    with transaction.atomic():
        _require_manager(collection, granted_by)
        return _grant(collection=collection, user=user, group=group, level=level, granted_by=granted_by)


def collection_revoke(*, collection: Collection, revoked_by, user=None, group=None) -> bool:
    """Remove a user's or a group's grant; effective on their next request (the selectors
    read grants in every statement). Audited in the same transaction. False: there was none."""
    principal = _principal_payload(user, group)
    lookup = {"user": user} if user is not None else {"group": group}
    with transaction.atomic():
        _require_manager(collection, revoked_by)
        grant = CollectionGrant.objects.select_for_update().filter(collection=collection, **lookup).order_by("id").first()
        if grant is None:
            return False
        level = grant.level
        grant.delete()
        audit_record(
            event_type=EventType.ACCESS_REVOKED,
            outcome=Outcome.SUCCESS,
            actor=revoked_by,
            payload={"collection_id": collection.id, "collection": collection.name, **principal, "level": level},
        )
    return True


def collection_set_pii_policy(*, collection: Collection, pii_policy: str, changed_by) -> bool:
    """Change what ingest does with personal data in documents processed from now on (documents
    already indexed keep what they were stored with). Managers only; audited. False: unchanged."""
    if pii_policy not in Collection.PiiPolicy.values:
        raise ValidationError(f"Unknown personal-data policy “{pii_policy}” (use index, mask or refuse).")
    with transaction.atomic():
        _require_manager(collection, changed_by)
        locked = Collection.objects.select_for_update().get(id=collection.id)
        before = locked.pii_policy
        if before == pii_policy:
            return False
        locked.pii_policy = collection.pii_policy = pii_policy
        locked.save(update_fields=["pii_policy"])
        audit_record(
            event_type=EventType.SETTINGS_CHANGED, outcome=Outcome.SUCCESS, actor=changed_by,
            payload={"collection_id": collection.id, "collection": collection.name, "setting": "pii_policy",
                     "value": pii_policy, "previous_value": before},
        )
    return True
