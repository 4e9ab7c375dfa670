""""Verified" means right, with the real vLLM server (packaged SmolLM2) and the real database
(issue 22): a draft that drops the passage's prohibition, a draft that names nothing the
question does not already say, a circular draft, and a question worded away from the passage
that answers it.

Each asks through the answering service and asserts what a reader may rely on, whatever the
model writes: a Verified answer keeps the passage's polarity and names what was asked.
The drafts the packaged model writes today for these questions ("Yes, you can definitely use
USB drives on company laptops.", "The team at head office is responsible for approving travel
claims.") were labelled Verified before this change."""

import pytest

from apps.answering.models import AnswerKind
from apps.answering.services import ask_question
from apps.answering.verification import circular_problem, negative
from tests.test_answer_verification import assert_shown_answer_is_grounded, content_of, ingest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DEVICES = b"# Devices\n\nUSB drives are blocked by default and must not be used on company laptops.\n"
TRAVEL = b"# Travel\n\nTravel claims are approved by the Travel Desk at head office.\n"
NAME_CHANGE = (b"# Name changes\n\nTo change the name on your payslip, write to the Payroll Office at "
               b"payroll@example.org with the new name and the date it takes effect.\n")
DISPUTES = (b"# Disputes with the company\n\nAn employee cannot take a dispute with the company to court. "
            b"Every such dispute goes to binding arbitration.\n")


def test_a_draft_that_drops_the_passages_prohibition_is_not_verified(llm, collection, corpus_admin, member):
    ingest(collection, corpus_admin, "devices.md", DEVICES)
    result = ask_question(user=member, question="Can I use USB drives on company laptops?")
    assert result.answer_kind in (AnswerKind.VERIFIED, AnswerKind.QUOTATION), result
    if result.answer_kind == AnswerKind.VERIFIED:
        assert negative(result.answer), result.answer  # "must not" kept, never "Yes, you can"
    draft = content_of(result)["draft"]
    if not negative(draft):  # the model reversed the rule: the reader gets the passage instead
        assert result.answer_kind == AnswerKind.QUOTATION and "negation" in result.reason, (draft, result.reason)
        assert "must not be used" in result.answer
    assert_shown_answer_is_grounded(result)


def test_a_draft_that_names_nothing_new_is_not_an_answer(llm, collection, corpus_admin, member):
    ingest(collection, corpus_admin, "travel.md", TRAVEL)
    result = ask_question(user=member, question="Which team at head office approves travel claims?")
    assert result.answer_kind in (AnswerKind.VERIFIED, AnswerKind.QUOTATION), result
    if result.answer_kind == AnswerKind.VERIFIED:
        assert "Travel Desk" in result.answer, result.answer
    else:
        assert "Travel Desk" in result.answer and result.reason
    assert_shown_answer_is_grounded(result)


def test_a_circular_draft_is_not_verified(llm, collection, corpus_admin, member):
    """"Contact the office to contact" is no answer: whatever the model writes, a Verified
    answer does not go round in a circle and names the office or its address; a circular
    draft gets the passage quoted instead. (The packaged model wrote "To contact the Payroll
    Office ... [https://www.payrolloffice.com/...]": quoted, for the invented address.)"""
    ingest(collection, corpus_admin, "name-changes.md", NAME_CHANGE)
    result = ask_question(user=member, question="Whom do I contact to change the name on my payslip?")
    assert result.answer_kind in (AnswerKind.VERIFIED, AnswerKind.QUOTATION), result
    draft = content_of(result)["draft"]
    if result.answer_kind == AnswerKind.VERIFIED:
        assert not circular_problem(result.answer), result.answer
        assert "Payroll Office" in result.answer or "payroll@example.org" in result.answer, result.answer
    if circular_problem(draft):  # the reason given is the check's first finding, not always the circle
        assert result.answer_kind == AnswerKind.QUOTATION and result.reason, (draft, result.reason)
    assert circular_problem("The Payroll Office should contact the Payroll Office for this request.")
    assert_shown_answer_is_grounded(result)


def test_a_question_worded_away_from_the_passage_is_answered(llm, collection, corpus_admin, member, settings):
    """ "litigate" occurs in no passage; the passage answers it in other words ("take ... to
    court"). Before, any such word refused the question as not stated; now it costs evidence
    score, and this evidence is strong."""
    ingest(collection, corpus_admin, "disputes.md", DISPUTES)
    settings.RETRIEVAL_MAX_DISTANCE = 2.0  # the passage is retrieved: the evidence decides
    result = ask_question(user=member, question="Can an employee litigate a dispute with the company?")
    assert result.answer_kind != AnswerKind.NOT_STATED, result.reason
    assert "arbitration" in result.answer.lower() or "court" in result.answer.lower(), result.answer
    assert content_of(result)["answerability"]["answerable"] is True
    assert_shown_answer_is_grounded(result)
