from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.corpus.forms import CollectionForm, GrantForm, PiiPolicyForm
from apps.corpus.models import Chunk, Document
from apps.corpus.selectors import (
    chunk_visible_to,
    collection_grants,
    collection_list_with_counts,
    collections_ingestable_by,
    collections_manageable_by,
    collections_readable_by,
    collection_progress,
    document_status_counts,
)
from apps.corpus.services import collection_create, collection_grant, collection_revoke, collection_set_pii_policy


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
                pii_policy=form.cleaned_data["pii_policy"],
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error("name", error)
        else:
            messages.success(request, f"Collection “{collection.name}” created.")
            return redirect("corpus:collection_detail", collection_id=collection.id)
    return render(request, "corpus/collection_form.html", {"form": form})


DOCUMENTS_PER_PAGE = 50


def _detail_context(request, collection, grant_form=None) -> dict:
    counts = document_status_counts(collection)
    can_manage = collections_manageable_by(request.user).filter(id=collection.id).exists()
    # One page of documents, without their draft chunks (the page refreshes while work is pending).
    documents = collection.documents.defer("draft_chunks").order_by("-created_at", "-id")
    page = Paginator(documents, DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
    return {
        "collection": collection,
        "documents": page,
        "counts": counts,
        "in_progress": sum(counts[s] for s in Document.UNFINISHED),
        "progress": collection_progress(collection),
        "can_upload": collections_ingestable_by(request.user).filter(id=collection.id).exists(),
        "can_manage": can_manage,
        "grants": collection_grants(collection) if can_manage else [],
        "grant_form": grant_form or (GrantForm() if can_manage else None),
        "pii_form": PiiPolicyForm(initial={"pii_policy": collection.pii_policy}) if can_manage else None,
    }


@login_required
def collection_detail(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = get_object_or_404(collections_readable_by(request.user), id=collection_id)
    return render(request, "corpus/collection_detail.html", _detail_context(request, collection))


@require_POST
@login_required
def grant_add(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = get_object_or_404(collections_manageable_by(request.user), id=collection_id)
    form = GrantForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        grant = collection_grant(collection=collection, level=data["level"], granted_by=request.user,
                                 user=data.get("user"), group=data.get("group"))
        messages.success(request, f"{grant.principal.capitalize()} now has {grant.get_level_display().lower()} access.")
        return redirect("corpus:collection_detail", collection_id=collection.id)
    context = _detail_context(request, collection, grant_form=form)
    return render(request, "corpus/collection_detail.html", context, status=400)


@require_POST
@login_required
def pii_policy_change(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = get_object_or_404(collections_manageable_by(request.user), id=collection_id)
    form = PiiPolicyForm(request.POST)
    if not form.is_valid():
        return render(request, "corpus/collection_detail.html", _detail_context(request, collection), status=400)
    if collection_set_pii_policy(collection=collection, pii_policy=form.cleaned_data["pii_policy"], changed_by=request.user):
        messages.success(request, f"Personal data in new documents: {collection.get_pii_policy_display().lower()}.")
    return redirect("corpus:collection_detail", collection_id=collection.id)


@require_POST
@login_required
def grant_remove(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = get_object_or_404(collections_manageable_by(request.user), id=collection_id)
    user = group = None
    if request.POST.get("group_id", "").isdigit():
        group = get_object_or_404(Group, id=int(request.POST["group_id"]))
    elif request.POST.get("user_id", "").isdigit():
        user = get_object_or_404(get_user_model(), id=int(request.POST["user_id"]))
    else:
        raise Http404("No such grant.")
    if collection_revoke(collection=collection, revoked_by=request.user, user=user, group=group):
        messages.success(request, f"Access removed for {group.name if group else user.get_username()}.")
    return redirect("corpus:collection_detail", collection_id=collection.id)


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
