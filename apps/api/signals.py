"""Tokens end with the account controls that issued them (security review, finding 6).

A password change, a role removed (by an administrator, ``set_roles`` or the identity
provider's groups at single sign-on) and a disabled account revoke every token of that user,
audited. Receivers, because those changes are made by the accounts app and by Django itself
(``set_password``, the admin, ``manage.py changepassword``), which sit below the API and cannot
call it (imports point down)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, pre_save
from django.dispatch import receiver

from apps.accounts.roles import ROLE_LABELS
from apps.api.services import api_tokens_revoke_all

User = get_user_model()


@receiver(pre_save, sender=User, dispatch_uid="api_tokens_end_with_password_or_account")
def _password_or_account_changed(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return
    before = User.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["is_active"] and not instance.is_active:
        api_tokens_revoke_all(user=instance, reason="account disabled")
    elif before["password"] != instance.password:
        api_tokens_revoke_all(user=instance, reason="password changed")


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="api_tokens_end_with_a_role")
def _role_removed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    from django.contrib.auth.models import Group

    if action not in ("pre_remove", "pre_clear"):
        return
    if not reverse:  # user.groups.remove(group...) / user.groups.clear()
        groups = Group.objects.filter(pk__in=pk_set) if pk_set else instance.groups.all()
        if groups.filter(name__in=ROLE_LABELS).exists():
            api_tokens_revoke_all(user=instance, reason="role removed")
    elif instance.name in ROLE_LABELS:  # group.user_set.remove(user...) / .clear()
        users = User.objects.filter(pk__in=pk_set) if pk_set else instance.user_set.all()
        for user in users:
            api_tokens_revoke_all(user=user, reason="role removed")
