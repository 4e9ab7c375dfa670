from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.answering.forms import QuestionForm
from apps.answering.services import ask_question
from apps.corpus.selectors import collections_readable_by


@login_required
def ask(request: HttpRequest) -> HttpResponse:
    readable = list(collections_readable_by(request.user).order_by("name"))
    form = QuestionForm(request.POST or None, readable=readable)
    result = None
    if request.method == "POST" and form.is_valid():
        result = ask_question(
            user=request.user,
            question=form.cleaned_data["question"],
            collection_ids=form.cleaned_data["collections"] or None,
        )
    return render(request, "answering/ask.html", {"form": form, "result": result, "readable": readable})
