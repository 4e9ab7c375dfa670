"""Request and response shapes of the API (they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Field, Schema


class ErrorOut(Schema):
    detail: str


class AskIn(Schema):
    question: str = Field(..., min_length=1, max_length=2000)
    collection_ids: list[int] = Field(default_factory=list, max_length=100,
                                      description="Search only these (of the collections you may read).")
    follow_up_of: int | None = Field(None, description="The history id of the question this one follows up.")
    stream: bool = Field(False, description="true: answer as server-sent events (sources, token..., done).")


class CitationOut(Schema):
    n: int
    cited: bool
    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    page: int | None
    section: str
    score: float
    excerpt: str


class AskOut(Schema):
    outcome: str
    answer_kind: str = Field(..., description="verified (every sentence supported by the passage it cites), "
                             "quotation (the passage sentences that answer, verbatim), not_stated, or none")
    answer: str
    reason: str = Field("", description="why a quotation or not_stated was given instead of the model's answer")
    error: str
    audit_sequence: int | None
    history_id: int | None
    citations: list[CitationOut]


class SearchHit(Schema):
    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    page: int | None
    section: str
    score: float
    text: str


class CollectionIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    pii_policy: Literal["index", "mask", "refuse"] = Field(
        "index", description="Personal data in documents: index as is, mask with placeholders, or refuse the document")


class CollectionOut(Schema):
    id: int
    name: str
    description: str
    access: Literal["read", "ingest", "manage"]


class GrantIn(Schema):
    level: Literal["read", "ingest", "manage"]
    username: str | None = Field(None, max_length=150)
    group: str | None = Field(None, max_length=150)


class GrantOut(Schema):
    id: int
    level: str
    username: str | None
    group: str | None
    granted_at: datetime


class DocumentOut(Schema):
    id: int
    collection_id: int
    title: str
    status: str
    failure_reason: str
    version: int
    page_count: int | None
    chunk_count: int
    size_bytes: int
    created_at: datetime
    indexed_at: datetime | None


class UploadOut(Schema):
    name: str
    created: bool
    refused: str = ""
    document: DocumentOut | None = None


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str
    scopes: list[str]
    last_used_at: datetime | None


class AuditExportQuery(Schema):
    event_type: str = Field("", max_length=64)
    outcome: str = Field("", max_length=32)
    actor: str = Field("", max_length=150)
    date_from: date | None = None
    date_to: date | None = None
    collection_id: int | None = None
    q: str = Field("", max_length=200)


class PageIn(Schema):
    """A page of a list: the response says the total in ``X-Total-Count`` and, when the list
    goes on, where in a ``Link: <...>; rel="next"`` header."""

    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000_000)  # PostgreSQL OFFSET is a bigint: no 500 past it
