from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.corpus.forms import CollectionForm
from apps.corpus.models import Chunk, Document
from apps.corpus.selectors import (
    chunk_visible_to,
    collection_list_with_counts,
    collections_managed_by,
    collections_readable_by,
    collection_progress,
    document_status_counts,
)
from apps.corpus.services import collection_create


@login_required
def collection_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "corpus/collection_list.html",
        {"collections": collection_list_with_counts(request.user)},
    )


@login_required
@permission_required("corpus.add_collection", raise_exception=True)
def collection_new(request: HttpRequest) -> HttpResponse:
    form = CollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            collection = collection_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                reader_groups=form.cleaned_data["reader_groups"],
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error("name", error)
        else:
            messages.success(request, f"Collection “{collection.name}” created.")
            return redirect("corpus:collection_detail", collection_id=collection.id)
    return render(request, "corpus/collection_form.html", {"form": form})


@login_required
def collection_detail(request: HttpRequest, collection_id: int) -> HttpResponse:
    visible = collections_readable_by(request.user) | collections_managed_by(request.user)
    collection = get_object_or_404(visible.distinct(), id=collection_id)
    documents = collection.documents.order_by("-created_at")
    counts = document_status_counts(collection)
    in_progress = sum(counts[s] for s in Document.UNFINISHED)
    return render(
        request,
        "corpus/collection_detail.html",
        {
            "collection": collection,
            "documents": documents,
            "counts": counts,
            "in_progress": in_progress,
            "progress": collection_progress(collection),
            "can_upload": collections_managed_by(request.user).filter(id=collection.id).exists(),
        },
    )


@login_required
def passage_detail(request: HttpRequest, chunk_id: int) -> HttpResponse:
    """A cited passage in the context of its document: neighbours before and after."""
    chunk = chunk_visible_to(request.user, chunk_id)
    if chunk is None:
        raise Http404("No such passage, or you may not read it.")
    neighbours = Chunk.objects.filter(
        document=chunk.document, ordinal__gte=chunk.ordinal - 1, ordinal__lte=chunk.ordinal + 1
    ).order_by("ordinal")
    return render(request, "corpus/passage_detail.html", {"chunk": chunk, "neighbours": neighbours})
