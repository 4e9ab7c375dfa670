"""Failed authentications counted per source, name and time window (security review finding 8,
issue 14 item 6): one audit event per window instead of one per attempt."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_sso_identity"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthFailureWindow",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("method", models.CharField(max_length=16)),
                ("source", models.CharField(max_length=45)),
                ("name", models.CharField(max_length=150)),
                ("window_start", models.DateTimeField()),
                ("count", models.PositiveIntegerField(default=0)),
                ("reported", models.PositiveIntegerField(default=0)),
                ("reason", models.CharField(blank=True, max_length=500)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("method", "source", "name", "window_start"),
                                                        name="one_failure_window_per_key")],
                "indexes": [models.Index(fields=["window_start"], name="auth_failure_window_start"),
                            models.Index(fields=["method", "name", "window_start"], name="auth_failure_name_window")],
            },
        ),
    ]
