"""Collections, the documents in them, and the searchable chunks of those documents."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.functions import Lower
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2


class Collection(models.Model):
    class PiiPolicy(models.TextChoices):
        """What ingest does with personal data found in a document (apps.ingestion.personal_data)."""

        INDEX = "index", "Index as is (count what is found)"
        MASK = "mask", "Mask it: store typed placeholders instead of the values"
        REFUSE = "refuse", "Refuse documents that contain personal data"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    pii_policy = models.CharField(max_length=8, choices=PiiPolicy.choices, default=PiiPolicy.INDEX,
                                  verbose_name="Personal data")
    # Grants of any level (read < ingest < manage) live in CollectionGrant; these two views
    # of it name who holds one. The only place grants are evaluated is apps.corpus.selectors.
    reader_groups = models.ManyToManyField(
        Group, blank=True, related_name="readable_collections",
        through="CollectionGrant", through_fields=("collection", "group"),
    )
    reader_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="readable_collections",
        through="CollectionGrant", through_fields=("collection", "user"),
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            # "Finance" and "finance" are one name, also when created at the same moment.
            models.UniqueConstraint(Lower("name"), name="unique_collection_name_ci"),
        ]

    def __str__(self) -> str:
        return self.name


class CollectionGrant(models.Model):
    """One principal (a user or a group, never both) holds one level on one collection.

    Levels are cumulative: ``ingest`` may also read, ``manage`` may also ingest, delete
    documents and change grants. Group grants reach every member, now and later. The
    collection's creator gets a ``manage`` row at creation (revocable). Written only by
    apps.corpus.services (audited), read only by apps.corpus.selectors."""

    class Level(models.TextChoices):
        READ = "read", "Read"
        INGEST = "ingest", "Read and upload"
        MANAGE = "manage", "Manage (upload, delete, grant)"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="collection_grants"
    )
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="collection_grants")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.READ)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection_id", "group__name", "user__username"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, group__isnull=True) | models.Q(user__isnull=True, group__isnull=False)),
                name="grant_names_one_principal",
            ),
            models.UniqueConstraint(fields=["collection", "user"], name="one_grant_per_user",
                                    condition=models.Q(user__isnull=False)),
            models.UniqueConstraint(fields=["collection", "group"], name="one_grant_per_group",
                                    condition=models.Q(group__isnull=False)),
        ]

    @property
    def principal(self) -> str:
        return f"group {self.group.name}" if self.group_id else f"user {self.user.get_username()}"

    def __str__(self) -> str:
        return f"{self.principal}: {self.level} on {self.collection_id}"


def document_upload_path(document: Document, filename: str) -> str:
    # Content-addressed: the name a user gave never reaches the file system.
    return f"{document.collection_id}/{document.sha256[:2]}/{document.sha256}"


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        PARSED = "parsed", "Waiting for embedding"
        EMBEDDING = "embedding", "Embedding"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Replaced by a newer version"

    # Not finished yet: a worker will take these (or is on them).
    UNFINISHED = (Status.QUEUED, Status.PROCESSING, Status.PARSED, Status.EMBEDDING)

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=255, help_text="The file name as uploaded.")
    file = models.FileField(upload_to=document_upload_path, max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    file_type = models.CharField(max_length=16, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Parse attempts started.")
    # Who holds the document now: the Celery task id of the claim, and until when. A
    # redelivered task (same id) takes its own claim back at once; others wait for the lease.
    claim_task_id = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The process holding the claim (apps.ingestion.holders): on its own host a claim whose
    # process is gone is taken over at once instead of waiting for the lease.
    claim_holder = models.CharField(max_length=160, blank=True)
    # Parsed chunks waiting for the embed step: [{"text", "page_number", "section_title",
    # "ordinal", "metadata"}]; emptied once indexed.
    draft_chunks = models.JSONField(null=True, blank=True)
    failure_code = models.CharField(max_length=32, blank=True)
    quarantined_at = models.DateTimeField(null=True, blank=True)
    # Versions: an upload with a known title and new bytes is version n+1 and replaces the
    # previous version's chunks in one transaction when it is indexed.
    version = models.PositiveIntegerField(default=1)
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    parse_seconds = models.FloatField(null=True, blank=True)
    embed_seconds = models.FloatField(null=True, blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    # Personal data found at ingest, counts by type ({"PERSON": 2, "EMAIL_ADDRESS": 1}), never
    # the values; {} none found, None not screened (apps.ingestion.personal_data).
    pii_summary = models.JSONField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The same bytes uploaded twice to a collection are one document.
            models.UniqueConstraint(fields=["collection", "sha256"], name="unique_content_per_collection"),
            # Two uploads of a new title at the same moment cannot both be version 1.
            models.UniqueConstraint(fields=["collection", "title", "version"], name="unique_document_version"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def pii_description(self) -> str:
        """The personal data found at ingest, for people: "2 names, 1 e-mail address"."""
        from apps.privacy.kinds import describe

        if self.pii_summary is None:
            return "not checked"
        return describe(self.pii_summary) or "none found"


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Denormalised from the document so the permission filter is a plain column test in SQL.
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page_number = models.PositiveIntegerField(null=True, blank=True)
    section_title = models.CharField(max_length=500, blank=True)
    # {"element_types": [...], "table_html": "<table>…"} (tables kept as tables), {} if none.
    metadata = models.JSONField(default=dict, blank=True)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    search_vector = SearchVectorField(null=True)
    # A cache for answering: the vectors of the chunk's sentences (float32, in the order of
    # apps.answering.prompts.split_sentences), written the first time the chunk is a source,
    # so later questions pick their evidence sentences without running the model again.
    sentence_vectors = models.BinaryField(null=True, editable=False)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="unique_chunk_position")
        ]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(name="chunk_search_vector_gin", fields=["search_vector"]),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"
