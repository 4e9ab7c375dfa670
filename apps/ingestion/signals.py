"""Signals of the document writers, for the apps above that keep copies of document text."""

from django.dispatch import Signal

# Sent inside the deleting transaction with ``document_ids`` (every version removed) and
# ``erased`` (whether their audit keys were destroyed). apps.answering blanks the answers
# of history rows that showed them.
documents_deleted = Signal()
