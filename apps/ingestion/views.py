"""Upload, delete and retry documents. Who may do what is the collection's grants:
ingest (or manage) to upload and retry, manage to delete; the same rule as the API's.
A collection the user cannot read is a 404 (its existence is not revealed); one they read
without the needed grant is a 403 that says which grant is missing."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from apps.corpus.models import Collection
from apps.corpus.selectors import collections_ingestable_by, collections_manageable_by, collections_readable_by
from apps.ingestion.archives import files_upload
from apps.ingestion.deletion import document_delete
from apps.ingestion.services import UploadRejected, bulk_enqueue, document_retry


def _collection(request: HttpRequest, collection_id: int, allowed, needed: str) -> Collection:
    collection = get_object_or_404(collections_readable_by(request.user), id=collection_id)
    if not allowed(request.user).filter(id=collection.id).exists():
        raise PermissionDenied(f"You need the {needed} grant on “{collection.name}” for this. Ask its manager.")
    return collection


@require_POST
@login_required
def document_upload_view(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = _collection(request, collection_id, collections_ingestable_by, "ingest")
    files = request.FILES.getlist("files")
    for name in getattr(request, "uploads_stopped", []):  # rag_platform.request_limits
        messages.error(request, f"{name}: over the upload limit of {settings.UPLOAD_MAX_BYTES:,} bytes; "
                                "the upload stopped there (files after it were not received).")
    if not files and not getattr(request, "uploads_stopped", None):
        messages.error(request, "Choose at least one file to upload.")
    with bulk_enqueue():
        outcomes = [result for uploaded in files for result in files_upload(
            collection=collection, uploaded_by=request.user, name=uploaded.name, content=uploaded, size=uploaded.size
        )]
    for result in outcomes:
        if isinstance(result, UploadRejected):
            messages.error(request, str(result))
        elif result.created:
            messages.success(request, f"{result.name}: queued for indexing.")
        else:
            messages.info(request, f"{result.name}: already in this collection as “{result.document.title}”.")
    return redirect("corpus:collection_detail", collection_id=collection.id)


@require_POST
@login_required
def document_delete_view(request: HttpRequest, collection_id: int, document_id: int) -> HttpResponse:
    collection = _collection(request, collection_id, collections_manageable_by, "manage")
    document = get_object_or_404(collection.documents, id=document_id)
    title = document.title
    document_delete(document_id=document.id, actor=request.user)
    messages.success(request, f"“{title}” deleted: its file, passages and vectors are gone.")
    return redirect("corpus:collection_detail", collection_id=collection.id)


@require_POST
@login_required
def document_retry_view(request: HttpRequest, collection_id: int, document_id: int) -> HttpResponse:
    collection = _collection(request, collection_id, collections_ingestable_by, "ingest")
    document = get_object_or_404(collection.documents, id=document_id)
    if document_retry(document_id=document.id, actor=request.user):
        messages.success(request, f"“{document.title}” queued again.")
    return redirect("corpus:collection_detail", collection_id=collection.id)
