"""The creator's implicit manage right becomes an ordinary, revocable grant row (security
review, finding 3): the selectors no longer read ``created_by``, so every existing creator
gets the manage grant they effectively held (a lower grant of theirs is raised to manage)."""

from django.db import migrations


def creators_get_manage_grants(apps, schema_editor):
    Collection = apps.get_model("corpus", "Collection")
    CollectionGrant = apps.get_model("corpus", "CollectionGrant")
    for collection in Collection.objects.exclude(created_by=None).only("id", "created_by_id"):
        grant = CollectionGrant.objects.filter(collection_id=collection.id, user_id=collection.created_by_id).first()
        if grant is None:
            CollectionGrant.objects.create(collection_id=collection.id, user_id=collection.created_by_id,
                                           level="manage", granted_by_id=collection.created_by_id)
        elif grant.level != "manage":
            grant.level = "manage"
            grant.save(update_fields=["level"])


class Migration(migrations.Migration):

    dependencies = [
        ("corpus", "0005_race_free_names_and_versions"),
    ]

    operations = [
        migrations.RunPython(creators_get_manage_grants, migrations.RunPython.noop),
    ]
