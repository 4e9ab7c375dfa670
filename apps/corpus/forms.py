from django import forms
from django.contrib.auth.models import Group

from apps.corpus.models import Collection


class CollectionForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    reader_groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Groups that may read it",
    )
    pii_policy = forms.ChoiceField(choices=Collection.PiiPolicy.choices, initial=Collection.PiiPolicy.INDEX,
                                   label="Personal data in documents",
                                   help_text="Masking at ingest cannot be undone in the index: upload again to change it.")


class PiiPolicyForm(forms.Form):
    pii_policy = forms.ChoiceField(choices=Collection.PiiPolicy.choices, label="Personal data in new documents")


class GrantForm(forms.Form):
    """Give a group (by role or any other group) or one user a level on a collection."""

    group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False, label="Group",
                                   empty_label="— or a single user —")
    username = forms.CharField(max_length=150, required=False, label="User name")
    level = forms.ChoiceField(choices=[("read", "Read"), ("ingest", "Read and upload"),
                                       ("manage", "Manage (upload, delete, grant)")], label="Access")

    def clean(self):
        from django.contrib.auth import get_user_model

        data = super().clean()
        group, username = data.get("group"), (data.get("username") or "").strip()
        if bool(group) == bool(username):
            raise forms.ValidationError("Choose a group or type one user name (not both).")
        if username:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                self.add_error("username", f"No user named “{username}”.")
            data["user"] = user
        return data
