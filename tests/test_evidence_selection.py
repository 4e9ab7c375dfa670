"""Evidence selection beyond the shown passages (issue 22): pure logic, fast. Which extra chunk
of a shown document becomes a cited source, and how windows are numbered."""

from apps.answering.evidence import Evidence, _window
from apps.answering.sentences import sentence_spans
from apps.answering.steps import cite_candidates
from apps.retrieval.services import RetrievedChunk


def chunk(chunk_id: int, document_id: int = 1) -> RetrievedChunk:
    return RetrievedChunk(chunk_id=chunk_id, document_id=document_id, document_title="Leave", collection_id=1,
                          page_number=None, section_title="", text=f"chunk {chunk_id}", distance=0.3)


def test_an_extra_chunk_among_the_best_windows_is_cited_after_the_shown_ones():
    shown = [chunk(10), chunk(11)]
    candidates = [*shown, chunk(12), chunk(13)]
    ranked = [Evidence(4, "best, from chunk 13", 1.2), Evidence(1, "from chunk 10", 1.0),
              Evidence(3, "from chunk 12, not among the best", 0.5)]
    sources, kept = cite_candidates(shown, candidates, ranked, keep=2)
    assert [s.chunk_id for s in sources] == [10, 11, 13]
    assert [(e.number, e.sentence) for e in kept] == [(3, "best, from chunk 13"), (1, "from chunk 10")]


def test_without_extra_chunks_among_the_best_nothing_changes():
    shown = [chunk(10), chunk(11)]
    ranked = [Evidence(2, "b", 1.0), Evidence(1, "a", 0.9), Evidence(3, "c", 0.1)]
    sources, kept = cite_candidates(shown, [*shown, chunk(12)], ranked, keep=2)
    assert sources == shown and [e.number for e in kept] == [2, 1]


def test_a_shown_source_beyond_the_evidence_sources_keeps_its_number():
    # Five shown, evidence read from the first four plus one extra: the extra is number 6.
    shown = [chunk(i) for i in range(10, 15)]
    candidates = [*shown[:4], chunk(20)]
    sources, kept = cite_candidates(shown, candidates, [Evidence(5, "extra", 1.0)])
    assert [s.chunk_id for s in sources] == [10, 11, 12, 13, 14, 20] and kept[0].number == 6


def test_a_table_row_is_read_with_its_header_and_names_both_sentences():
    # As ingestion renders a parsed table: one row a line, cells joined by " | ".
    spans = sentence_spans("Cover | Monthly cost\nTeam member + spouse | £27.14\nTeam member only | £12.10")
    text, used = _window(spans, 2)
    assert text == "Cover | Monthly cost — Team member only | £12.10" and used == [0, 2]


def same_vector(texts):
    """Every sentence equally similar to the question: only the other signals rank."""
    return [[1.0] + [0.0] * 383 for _ in texts]


def passage(text: str) -> RetrievedChunk:
    return RetrievedChunk(chunk_id=1, document_id=1, document_title="Passwords", collection_id=1, page_number=None,
                          section_title="", text=text, distance=0.3)


def test_a_which_question_prefers_the_window_that_names_something_new(settings):
    from apps.answering.evidence import rank_evidence

    settings.ANSWER_ASKED_VECTOR_WEIGHT = 0.0
    source = passage("TTS requires a password manager on every account and device.\n"
                     "We recommend KeePassXC as the password manager.")
    question = "Which password manager does TTS recommend?"
    settings.ANSWER_NAME_WEIGHT = 0.0
    assert "KeePassXC" not in rank_evidence(question, same_vector([""])[0], [source], embed=same_vector)[0].sentence
    settings.ANSWER_NAME_WEIGHT = 0.2
    assert "KeePassXC" in rank_evidence(question, same_vector([""])[0], [source], embed=same_vector)[0].sentence


def test_how_many_weeks_needs_a_number_of_weeks_and_how_much_it_costs_an_amount():
    from apps.answering.answerability import figure_kind_problem

    assert figure_kind_problem("How many weeks of leave do I get?", "You get 16 weeks of paid leave.") == ""
    assert figure_kind_problem("How many weeks of leave do I get?", "You get sixteen weeks of paid leave.") == ""
    assert figure_kind_problem("How many business days does a check take?", "It takes less than fifteen minutes.")
    assert figure_kind_problem("How much does GitLab reimburse for internet?", "Care within 100 miles of home.")
    assert figure_kind_problem("How much does GitLab reimburse for internet?", "Up to $50 a month.") == ""
    # "paid time off" and "pay period" are not questions about money.
    assert figure_kind_problem("How much paid time off will I get?", "12 weeks additional leave.") == ""
    assert figure_kind_problem("How much leave do I earn each pay period?", "4 hours per pay period.") == ""
