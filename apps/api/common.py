"""What every API endpoint shares: the error responses, the 404 that hides what a caller may
not see, and paging."""

from __future__ import annotations

from django.http import Http404, HttpResponse

from apps.api.schemas import ErrorOut, PageIn

NOT_VISIBLE = "No such {what}, or you may not use it."
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut, 422: ErrorOut}


def visible_or_404(queryset, what: str, **lookup):
    """The object of ``queryset`` matching ``lookup``, or a 404 that reads like "does not exist"."""
    found = queryset.filter(**lookup).first()
    if found is None:
        raise Http404(NOT_VISIBLE.format(what=what))
    return found


def paginate(request, response: HttpResponse, queryset, page: PageIn) -> list:
    """One page of ``queryset``; the headers say the total and, if cut, where the next page is."""
    total = queryset.count()
    items = list(queryset[page.offset: page.offset + page.limit])
    response["X-Total-Count"] = str(total)
    if page.offset + len(items) < total:
        query = request.GET.copy()
        query["limit"], query["offset"] = str(page.limit), str(page.offset + page.limit)
        response["Link"] = f'<{request.path}?{query.urlencode()}>; rel="next"'
    return items
