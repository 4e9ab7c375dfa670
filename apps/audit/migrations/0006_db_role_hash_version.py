from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_truncate_and_controlled_delete")]

    operations = [
        migrations.AddField(model_name="auditevent", name="db_role",
                            field=models.CharField(blank=True, editable=False, max_length=63)),
        migrations.AddField(model_name="auditevent", name="hash_version",
                            field=models.PositiveSmallIntegerField(default=1, editable=False)),
        migrations.AddField(model_name="audittombstone", name="content_sha256",
                            field=models.CharField(blank=True, max_length=64)),
        migrations.AddField(model_name="audittombstone", name="db_role",
                            field=models.CharField(blank=True, max_length=63)),
    ]
