"""Personal data: a collection's ingest policy and each document's counts by type."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("corpus", "0007_clear_sentence_vectors")]

    operations = [
        migrations.AddField(
            model_name="collection",
            name="pii_policy",
            field=models.CharField(
                choices=[("index", "Index as is (count what is found)"),
                         ("mask", "Mask it: store typed placeholders instead of the values"),
                         ("refuse", "Refuse documents that contain personal data")],
                default="index", max_length=8, verbose_name="Personal data"),
        ),
        migrations.AddField(
            model_name="document",
            name="pii_summary",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
