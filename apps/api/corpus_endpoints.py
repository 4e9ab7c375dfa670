"""The API's collections, grants and documents endpoints (mounted by apps.api.api): through the
corpus selectors, so a collection or document the caller may not use answers 404."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from ninja import File, Query, Router
from ninja.errors import HttpError
from ninja.files import UploadedFile

from apps.api.auth import TokenAuth
from apps.api.common import ERRORS, paginate, visible_or_404
from apps.api.schemas import CollectionIn, CollectionOut, DocumentOut, GrantIn, GrantOut, PageIn, UploadOut
from apps.corpus.models import Collection, CollectionGrant, Document
from apps.corpus.selectors import (
    collection_grants, collections_ingestable_by, collections_manageable_by, collections_readable_by, grant_level_of,
    grant_levels_of,
)
from apps.corpus.services import collection_create, collection_grant, collection_revoke


# --- Collections and grants ------------------------------------------------------------
collections_router = Router(tags=["collections"])


def _collection_out(user, collection: Collection) -> dict:
    return {"id": collection.id, "name": collection.name, "description": collection.description,
            "access": grant_level_of(user, collection)}


@collections_router.get("", response={200: list[CollectionOut], **ERRORS},
                        summary="Collections you may read (paged: X-Total-Count, Link rel=next)")
def collections_list(request, response: HttpResponse, page: Query[PageIn]):
    collections = paginate(request, response, collections_readable_by(request.user).order_by("name", "id"), page)
    levels = grant_levels_of(request.user, [c.id for c in collections])
    return [{"id": c.id, "name": c.name, "description": c.description, "access": levels[c.id]} for c in collections]


@collections_router.post("", response={201: CollectionOut, **ERRORS}, auth=TokenAuth("manage"),
                         summary="Create a collection (corpus admins); you manage it")
def collections_create(request, payload: CollectionIn):
    if not request.user.has_perm("corpus.add_collection"):
        raise PermissionDenied("Only corpus admins create collections.")
    collection = collection_create(name=payload.name, description=payload.description, created_by=request.user,
                                   pii_policy=payload.pii_policy)
    return 201, _collection_out(request.user, collection)


@collections_router.get("/{collection_id}", response={200: CollectionOut, **ERRORS})
def collectionsvisible_or_404(request, collection_id: int):
    return _collection_out(request.user, visible_or_404(collections_readable_by(request.user), "collection", id=collection_id))


def _grant_out(grant: CollectionGrant) -> dict:
    return {"id": grant.id, "level": grant.level, "granted_at": grant.granted_at,
            "username": grant.user.get_username() if grant.user_id else None,
            "group": grant.group.name if grant.group_id else None}


def _principal(username: str | None, group: str | None):
    if bool(username) == bool(group):
        raise HttpError(422, "Name exactly one of username or group.")
    if username:
        return visible_or_404(get_user_model().objects.all(), "user", username=username), None
    return None, visible_or_404(Group.objects.all(), "group", name=group)


@collections_router.get("/{collection_id}/grants", response={200: list[GrantOut], **ERRORS}, auth=TokenAuth("manage"),
                        summary="Who has access (managers of the collection; paged)")
def grants_list(request, response: HttpResponse, collection_id: int, page: Query[PageIn]):
    collection = visible_or_404(collections_manageable_by(request.user), "collection", id=collection_id)
    return [_grant_out(g) for g in paginate(request, response, collection_grants(collection).order_by("group__name", "user__username", "id"), page)]


@collections_router.post("/{collection_id}/grants", response={200: GrantOut, **ERRORS}, auth=TokenAuth("manage"),
                         summary="Give a user or a group read, ingest or manage access (audited)")
def grants_add(request, collection_id: int, payload: GrantIn):
    collection = visible_or_404(collections_manageable_by(request.user), "collection", id=collection_id)
    user, group = _principal(payload.username, payload.group)
    grant = collection_grant(collection=collection, level=payload.level, granted_by=request.user, user=user, group=group)
    return _grant_out(grant)


@collections_router.delete("/{collection_id}/grants", response={204: None, **ERRORS}, auth=TokenAuth("manage"),
                           summary="Revoke a user's or a group's access; effective on their next request (audited)")
def grants_remove(request, collection_id: int, username: str | None = Query(None, max_length=150),
                  group: str | None = Query(None, max_length=150)):
    collection = visible_or_404(collections_manageable_by(request.user), "collection", id=collection_id)
    user, group_obj = _principal(username, group)
    if not collection_revoke(collection=collection, revoked_by=request.user, user=user, group=group_obj):
        raise Http404("That user or group has no grant on this collection.")
    return 204, None


# --- Documents -------------------------------------------------------------------------
documents_router = Router(tags=["documents"])

_DOCUMENT_FIELDS = ("id", "collection_id", "title", "status", "failure_reason", "version", "page_count",
                    "chunk_count", "size_bytes", "created_at", "indexed_at")


def _document_out(document: Document) -> dict:
    return {f: getattr(document, f) for f in _DOCUMENT_FIELDS}


@collections_router.get("/{collection_id}/documents", response={200: list[DocumentOut], **ERRORS},
                        summary="Documents of a collection, newest first (paged: X-Total-Count, Link rel=next)")
def documents_list(request, response: HttpResponse, collection_id: int, page: Query[PageIn]):
    collection = visible_or_404(collections_readable_by(request.user), "collection", id=collection_id)
    documents = collection.documents.defer("draft_chunks").order_by("-created_at", "-id")
    return [_document_out(d) for d in paginate(request, response, documents, page)]


@collections_router.post("/{collection_id}/documents", response={202: list[UploadOut], **ERRORS}, auth=TokenAuth("ingest"),
                         summary="Upload a file (or a .zip of files); ingestion is asynchronous: poll the document")
def documents_upload(request, collection_id: int, file: File[UploadedFile]):
    from apps.ingestion.archives import files_upload
    from apps.ingestion.services import UploadRejected

    collection = visible_or_404(collections_ingestable_by(request.user), "collection", id=collection_id)
    outcomes = files_upload(collection=collection, uploaded_by=request.user, name=file.name or "upload",
                            content=file, size=file.size)
    results = []
    for outcome in outcomes:
        if isinstance(outcome, UploadRejected):
            results.append({"name": file.name or "upload", "created": False, "refused": str(outcome)})
        else:
            results.append({"name": outcome.name, "created": outcome.created, "document": _document_out(outcome.document)})
    if all(r["refused"] if "refused" in r else False for r in results):
        raise HttpError(400, " ".join(r["refused"] for r in results))
    return 202, results


@documents_router.get("/{document_id}", response={200: DocumentOut, **ERRORS},
                      summary="A document and its ingestion status")
def documentsvisible_or_404(request, document_id: int):
    readable = Document.objects.filter(collection__in=collections_readable_by(request.user))
    return _document_out(visible_or_404(readable, "document", id=document_id))


@documents_router.delete("/{document_id}", response={204: None, **ERRORS}, auth=TokenAuth("manage"),
                         summary="Delete a document, its passages and vectors (managers; audited)")
def documents_delete(request, document_id: int):
    from apps.ingestion.deletion import document_delete

    manageable = Document.objects.filter(collection__in=collections_manageable_by(request.user))
    document = visible_or_404(manageable, "document", id=document_id)
    document_delete(document_id=document.id, actor=request.user)
    return 204, None
