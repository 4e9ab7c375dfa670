"""Web pages for a user's API tokens: create (the secret is shown once), list, revoke.

Minting a token needs the person to prove it is them again (their password, or for a single
sign-on account a sign-in at most API_TOKEN_REAUTH_SECONDS old): a session left open on a
shared screen must not yield a credential that outlives it."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.middleware import SIGNED_IN_AT
from apps.api.models import ApiToken, Scope
from apps.api.services import api_token_create, api_token_revoke, max_days_for


def _reauthenticated(request: HttpRequest) -> str:
    """"" when the person re-authenticated, else what to do."""
    user = request.user
    if user.has_usable_password():
        # Through the sign-in backends (security review L2): a wrong password counts towards
        # the throttle (axes, the name pause) and is audited as auth.sign_in_failed, so a
        # stolen session cannot guess the password at leisure to mint a long-lived token.
        try:
            again = authenticate(request, username=user.get_username(), password=request.POST.get("password", ""))
        except PermissionDenied:
            again = None
        if again is not None and again.pk == user.pk:
            return ""
        if getattr(request, "axes_locked_out", False):
            return "Too many wrong passwords: wait a few minutes, then enter your current password again."
        return "Enter your current password to create a token."
    signed_in_at = request.session.get(SIGNED_IN_AT) or 0
    if time.time() - signed_in_at <= settings.API_TOKEN_REAUTH_SECONDS:
        return ""
    return "Sign out and in again (single sign-on), then create the token within a few minutes."


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    issued, error = None, ""
    if request.method == "POST":
        raw_days = request.POST.get("days", "30").strip()
        days = int(raw_days) if raw_days.isdigit() else 0
        scopes = request.POST.getlist("scopes") or [Scope.ASK]
        error = _reauthenticated(request)
        if not error:
            try:
                issued = api_token_create(user=request.user, name=request.POST.get("name", ""), days=days,
                                          scopes=scopes)
            except ValueError as refused:
                error = str(refused)
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", {
        "tokens": tokens, "issued": issued, "error": error, "max_days": max_days_for(request.user),
        "scopes": Scope.choices, "needs_password": request.user.has_usable_password(),
    }, status=400 if error else 200)


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, id=token_id, user=request.user)
    if api_token_revoke(token=token, revoked_by=request.user):
        messages.success(request, f"Token {token.prefix}… revoked: it stops working now.")
    return redirect("api_tokens")
