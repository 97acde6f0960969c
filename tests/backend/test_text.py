from hypothesis import given
from hypothesis import strategies as st

from backend.core.text import content_terms, sentence_spans, split_sentences


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    text = (
        "Maj. Gen. Imad Al-Maliki spoke to U.S. officials on Oct. 4, 2023. George W. Bush was not there! "
        '"Plans are excellent." Rates rose 5.25 percent.'
    )
    assert split_sentences(text) == [
        "Maj. Gen. Imad Al-Maliki spoke to U.S. officials on Oct. 4, 2023.",
        "George W. Bush was not there!",
        '"Plans are excellent."',
        "Rates rose 5.25 percent.",
    ]


def test_line_breaks_end_sentences_even_without_punctuation() -> None:
    assert split_sentences("A headline without a period\n\nThe first paragraph. The second") == [
        "A headline without a period",
        "The first paragraph.",
        "The second",
    ]


@given(st.text(alphabet=st.sampled_from("ab .!?\nAB1\"'"), max_size=200))
def test_spans_cover_every_visible_character_once(text: str) -> None:
    spans = list(sentence_spans(text))
    covered = [False] * len(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        previous_end = end
        for i in range(start, end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


def test_content_terms_drop_stopwords_and_meet_word_forms() -> None:
    assert content_terms("Who commands the sector?") == content_terms("commander sector")
