from django.http import HttpRequest

from apps.accounts.roles import COMPLIANCE_OFFICER, ROLE_LABELS, user_roles


def roles(request: HttpRequest) -> dict:
    names = user_roles(request.user)
    # Who sees the audit pages' "Erase" links (apps.answering.erasure.may_erase decides).
    may_erase = COMPLIANCE_OFFICER in names or getattr(request.user, "is_superuser", False)
    return {"user_role_labels": [ROLE_LABELS[name] for name in names], "may_erase": may_erase}
