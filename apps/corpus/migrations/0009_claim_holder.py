"""The process that holds a document's claim, so a dead holder's claim can be taken over."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("corpus", "0008_personal_data")]

    operations = [
        migrations.AddField(
            model_name="document",
            name="claim_holder",
            field=models.CharField(blank=True, max_length=160),
        ),
    ]
