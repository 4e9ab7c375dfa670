"""What may be labelled Verified beyond the grounding check: polarity both ways, what was
asked, no circular answers, near-extractive support. Pure logic, fast; the same rules on the
real model's answers are in test_answer_checks_llm.py."""

import pytest

from apps.answering.verification import verify_draft, wants_duration, wants_name

EXPENSES = "You must submit expenses within 90 days of the purchase date. Receipts under $25 are not required."
RECOVERY = ("Support will not restore access to a locked account. Support does not accept identity documents; "
            "use your recovery codes instead.")
FACTORS = "Location and a recognised device are not considered authentication factors; they are risk signals."
CONTACT = "Requests go to the Office of Information Policy, which answers within 20 working days."


def problem(draft, question, window, extractive=True):
    grounding, reason = verify_draft(draft, question=question, windows={1: window}, min_overlap=0.7,
                                     extractive=extractive)
    return reason if grounding.verified else f"grounding: {reason}"


def test_a_copy_of_the_window_that_answers_is_verified():
    assert problem("You must submit expenses within 90 days of the purchase date.",
                   "How long do I have to claim an expense?", EXPENSES) == ""


@pytest.mark.parametrize("draft, question, window", [
    # the passage negates, the answer drops it
    ("Location and a recognised device are considered authentication factors.",
     "Is a recognised device an authentication factor?", FACTORS),
    ("Support will restore access to a locked account.", "Will support restore access to my locked account?",
     RECOVERY),
    # the answer negates what the passage states
    ("You must not submit expenses within 90 days of the purchase date.", "When do I submit expenses?", EXPENSES),
])
def test_a_negation_dropped_or_added_is_not_verified(draft, question, window):
    assert "negat" in problem(draft, question, window)


def test_an_answer_that_repeats_a_phrase_goes_round_in_a_circle():
    reason = problem("The Office of Information Policy should contact the Office of Information Policy.",
                     "Which office handles my request?", CONTACT, extractive=False)
    assert "circle" in reason


def test_an_answer_that_is_a_question_or_restates_it_is_not_an_answer():
    question = "Which office answers requests?"
    assert "question" in problem("Which office answers requests?", question, CONTACT, extractive=False)
    assert problem("Requests are answered by the office.", question, CONTACT, extractive=False)


def test_a_figure_question_needs_a_figure_with_its_unit_not_in_the_question():
    window = "Each subscriber may bind 2 authenticators of section 4."
    assert "figure" in problem("You may bind authenticators.", "How many authenticators can I bind?", window,
                               extractive=False)
    assert "period" in problem("Receipts under $25 are not required.", "How long do I have to claim an expense?",
                               EXPENSES, extractive=False)


def test_a_which_question_needs_a_name_the_question_does_not_hold():
    assert problem("Requests go to the Office of Information Policy.", "Which office answers requests?", CONTACT) == ""
    assert "names nothing" in problem("Requests go to the office, which answers them.", "Which office answers requests?",
                                      "Requests go to the office, which answers them within a month.")


def test_the_small_profile_needs_the_answer_in_the_windows_order():
    window = "The manager approves travel first; finance pays the claim after the trip."
    assert "in order" in problem("Finance approves travel first; the manager pays the claim after the trip.",
                                 "Who approves travel?", window)


def test_grounding_is_against_the_window_shown_not_the_whole_chunk():
    # "2" is elsewhere in the chunk but not in the window the model was shown.
    reason = problem("The limit is 2 authenticators.", "How many authenticators can I bind?",
                     "Subscribers may bind several authenticators.")
    assert reason.startswith("grounding") and "2" in reason


@pytest.mark.parametrize("question, duration, name", [
    ("How long do I have to choose my benefits?", True, False),
    ("By when must I use it?", True, False),
    ("Who do I have to tell before I start?", False, True),
    ("Which insurer handles my dental coverage?", False, True),
    ("Where do I send the form?", False, True),
    ("How much is the referral bonus?", False, False),
])
def test_what_a_question_asks_for(question, duration, name):
    assert (wants_duration(question), wants_name(question)) == (duration, name)
