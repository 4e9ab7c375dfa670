from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from apps.corpus.selectors import collections_managed_by
from apps.ingestion.services import UploadRejected, document_upload


@require_POST
@login_required
@permission_required("corpus.add_document", raise_exception=True)
def document_upload_view(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = get_object_or_404(collections_managed_by(request.user), id=collection_id)
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, "Choose at least one file to upload.")
    for uploaded in files:
        try:
            result = document_upload(
                collection=collection,
                uploaded_by=request.user,
                name=uploaded.name,
                content=uploaded,
                size=uploaded.size,
            )
        except UploadRejected as rejection:
            messages.error(request, str(rejection))
        else:
            if result.created:
                messages.success(request, f"{uploaded.name}: queued for indexing.")
            else:
                messages.info(request, f"{uploaded.name}: already in this collection as “{result.document.title}”.")
    return redirect("corpus:collection_detail", collection_id=collection.id)
