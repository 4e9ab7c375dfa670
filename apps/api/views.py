"""Web pages for a user's API tokens: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.api.models import ApiToken
from apps.api.services import MAX_DAYS, api_token_create, api_token_revoke


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    issued, error = None, ""
    if request.method == "POST":
        raw_days = request.POST.get("days", "90").strip()
        days = int(raw_days) if raw_days.isdigit() else 0
        if not 1 <= days <= MAX_DAYS:
            error = f"Choose a lifetime between 1 and {MAX_DAYS} days."
        else:
            issued = api_token_create(user=request.user, name=request.POST.get("name", ""), days=days)
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", {"tokens": tokens, "issued": issued, "error": error,
                                                    "max_days": MAX_DAYS}, status=400 if error else 200)


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, id=token_id, user=request.user)
    if api_token_revoke(token=token, revoked_by=request.user):
        messages.success(request, f"Token {token.prefix}… revoked: it stops working now.")
    return redirect("api_tokens")
