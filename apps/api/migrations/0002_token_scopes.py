"""API token scopes and revocation reasons (security review, finding 6). Tokens minted
before scopes existed keep what they could do, except exporting the audit trail."""

from django.db import migrations, models


def existing_tokens_keep_their_powers(apps, schema_editor):
    apps.get_model("api", "ApiToken").objects.update(scopes=["ask", "ingest", "manage"])


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="revoked_reason",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(existing_tokens_keep_their_powers, migrations.RunPython.noop),
    ]
