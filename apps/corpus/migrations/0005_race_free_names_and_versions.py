"""Collection names unique whatever their case, document versions unique per title.

Rows that an earlier race left duplicated are made distinct first (the later collection
gets its id appended to its name, the later document the next free version), so the
constraints can be added to an existing installation."""

import django.db.models.functions.text
from django.db import migrations, models


def make_distinct(apps, schema_editor):
    Collection = apps.get_model("corpus", "Collection")
    Document = apps.get_model("corpus", "Document")
    seen: set[str] = set()
    for collection in Collection.objects.order_by("id"):
        key = collection.name.lower()
        if key in seen:
            collection.name = f"{collection.name[:180]} ({collection.id})"
            collection.save(update_fields=["name"])
        seen.add(collection.name.lower())
    versions: dict[tuple[int, str], set[int]] = {}
    for document in Document.objects.order_by("id").only("id", "collection_id", "title", "version").iterator():
        taken = versions.setdefault((document.collection_id, document.title), set())
        if document.version in taken:
            document.version = max(taken) + 1
            document.save(update_fields=["version"])
        taken.add(document.version)


class Migration(migrations.Migration):
    dependencies = [("corpus", "0004_chunk_sentence_vectors")]

    operations = [
        migrations.RunPython(make_distinct, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="collection",
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower("name"), name="unique_collection_name_ci"),
        ),
        migrations.AddConstraint(
            model_name="document",
            constraint=models.UniqueConstraint(fields=("collection", "title", "version"), name="unique_document_version"),
        ),
    ]
