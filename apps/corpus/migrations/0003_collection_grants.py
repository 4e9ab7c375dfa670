"""Grants with levels (read, ingest, manage) for users and groups.

The read grants kept so far in two plain many-to-many tables move into CollectionGrant
(level read); ``reader_users``/``reader_groups`` become views through it."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def copy_read_grants(apps, schema_editor):
    Collection = apps.get_model("corpus", "Collection")
    CollectionGrant = apps.get_model("corpus", "CollectionGrant")
    rows = []
    for collection in Collection.objects.all():
        rows += [CollectionGrant(collection=collection, user=u, level="read") for u in collection.old_reader_users.all()]
        rows += [CollectionGrant(collection=collection, group=g, level="read") for g in collection.old_reader_groups.all()]
    CollectionGrant.objects.bulk_create(rows)


def copy_back(apps, schema_editor):
    Collection = apps.get_model("corpus", "Collection")
    CollectionGrant = apps.get_model("corpus", "CollectionGrant")
    for grant in CollectionGrant.objects.all():
        collection = Collection.objects.get(id=grant.collection_id)
        if grant.user_id:
            collection.old_reader_users.add(grant.user_id)
        else:
            collection.old_reader_groups.add(grant.group_id)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("corpus", "0002_ingestion_reliability"),
    ]

    operations = [
        migrations.CreateModel(
            name="CollectionGrant",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("level", models.CharField(choices=[("read", "Read"), ("ingest", "Read and upload"), ("manage", "Manage (upload, delete, grant)")], default="read", max_length=8)),
                ("granted_at", models.DateTimeField(auto_now_add=True)),
                ("collection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="grants", to="corpus.collection")),
                ("granted_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("group", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="collection_grants", to="auth.group")),
                ("user", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="collection_grants", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["collection_id", "group__name", "user__username"],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(models.Q(("group__isnull", True), ("user__isnull", False)), models.Q(("group__isnull", False), ("user__isnull", True)), _connector="OR"), name="grant_names_one_principal"),
                    models.UniqueConstraint(condition=models.Q(("user__isnull", False)), fields=("collection", "user"), name="one_grant_per_user"),
                    models.UniqueConstraint(condition=models.Q(("group__isnull", False)), fields=("collection", "group"), name="one_grant_per_group"),
                ],
            },
        ),
        # Keep the old tables reachable under other names while the rows are copied.
        migrations.RenameField("collection", "reader_users", "old_reader_users"),
        migrations.RenameField("collection", "reader_groups", "old_reader_groups"),
        migrations.AlterField("collection", "old_reader_users", models.ManyToManyField(blank=True, related_name="+", to=settings.AUTH_USER_MODEL)),
        migrations.AlterField("collection", "old_reader_groups", models.ManyToManyField(blank=True, related_name="+", to="auth.group")),
        migrations.RunPython(copy_read_grants, copy_back),
        migrations.RemoveField("collection", "old_reader_users"),
        migrations.RemoveField("collection", "old_reader_groups"),
        migrations.AddField(
            model_name="collection",
            name="reader_groups",
            field=models.ManyToManyField(blank=True, related_name="readable_collections", through="corpus.CollectionGrant", through_fields=("collection", "group"), to="auth.group"),
        ),
        migrations.AddField(
            model_name="collection",
            name="reader_users",
            field=models.ManyToManyField(blank=True, related_name="readable_collections", through="corpus.CollectionGrant", through_fields=("collection", "user"), to=settings.AUTH_USER_MODEL),
        ),
    ]
