"""The compliance officer's "Erase" form, for a person or a document (apps.answering.erasure).

Reached from the audit review pages; only compliance officers and superusers may use it
(others get 403). A reason and an explicit confirmation are required; a refusal (legal
hold, unknown subject) is shown on the form and nothing is changed.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.answering.erasure import erase_document, erase_user, may_erase
from apps.audit.erasure import ErasureRefused

KINDS = {"user": "a person's questions and answers", "document": "a document (every version)"}


class EraseForm(forms.Form):
    subject = forms.CharField(max_length=150, label="User name or document id")
    reason = forms.CharField(max_length=500, label="Reason (recorded in the signed audit trail)",
                             widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(label="I understand this cannot be undone: the keys are destroyed.")

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give the reason for the erasure.")
        return reason


@login_required
def erase(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in KINDS:
        raise Http404("nothing of that kind can be erased")
    if not may_erase(request.user):
        raise PermissionDenied("Only compliance officers may erase content.")
    form = EraseForm(request.POST or None, initial={"subject": request.GET.get("subject", "")})
    status = 200
    if request.method == "POST" and form.is_valid():
        subject, reason = form.cleaned_data["subject"].strip(), form.cleaned_data["reason"]
        try:
            if kind == "user":
                user = get_user_model().objects.filter(username=subject).first()
                if user is None:
                    raise ErasureRefused(f"There is no user named “{subject}”.")
                done = erase_user(user=user, reason=reason, actor=request.user)
                messages.success(request, f"Erased {subject}'s questions and answers ({done.rows} history rows); "
                                          f"recorded as audit event #{done.sequence}.")
            else:
                if not subject.isdigit():
                    raise ErasureRefused("A document is named by its id (a number).")
                done = erase_document(document_id=int(subject), reason=reason, actor=request.user)
                messages.success(request, f"Erased document {subject} ({done.rows} versions)"
                                          + (f"; recorded as audit event #{done.sequence}." if done.sequence else "."))
            return redirect("audit:event_list")
        except ErasureRefused as error:
            form.add_error(None, str(error))
            status = 409
    from apps.audit import ledger

    return render(request, "audit/erase.html", {"form": form, "kind": kind, "what": KINDS[kind],
                                                "ledger_problems": ledger.read().problems}, status=status)
