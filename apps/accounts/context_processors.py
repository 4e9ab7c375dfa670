from django.http import HttpRequest

from apps.accounts.roles import ROLE_LABELS, user_roles


def roles(request: HttpRequest) -> dict:
    names = user_roles(request.user)
    return {"user_role_labels": [ROLE_LABELS[name] for name in names]}
