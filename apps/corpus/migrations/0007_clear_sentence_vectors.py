"""The evidence sentence splitter changed (apps.answering.sentences): vectors stored for the
old split could align with the wrong sentences when the count happens to match, so they are
cleared and recomputed the next time each chunk is a source."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("corpus", "0006_creator_manage_grants")]

    operations = [
        migrations.RunSQL("UPDATE corpus_chunk SET sentence_vectors = NULL", migrations.RunSQL.noop),
    ]
