import itertools
import math
from statistics import mean

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval.metrics import (
    Ranked,
    answer_correct,
    bootstrap_ci,
    citation_support,
    citation_validity,
    expected_calibration_error,
    first_per_article,
    hit_at,
    mrr_at,
    ndcg_at,
    paired_comparison,
    recall_at,
    reliability_bins,
    short_answer_correct,
    short_names,
)


def R(*flags: int, scores: list[float] | None = None) -> list[Ranked]:
    scores = scores or [1.0 - i / 100 for i in range(len(flags))]
    return [Ranked(bool(f), s) for f, s in zip(flags, scores, strict=True)]


def test_hand_computed_without_ties() -> None:
    ranking = R(0, 1, 0, 1)
    assert hit_at(ranking, 1) == 0 and hit_at(ranking, 2) == 1
    assert mrr_at(ranking) == 0.5
    assert recall_at(ranking, 2, total_relevant=4) == 0.25
    # DCG = 1/log2(3) + 1/log2(5); ideal with 2 relevant = 1 + 1/log2(3)
    assert ndcg_at(ranking, 10, total_relevant=2) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    )


def test_hand_computed_with_a_tie_at_the_top() -> None:
    # Two items tied first, one relevant: half the time it is first, half the time second.
    ranking = R(0, 1, 1, scores=[0.9, 0.9, 0.5])
    assert hit_at(ranking, 1) == 0.5
    assert mrr_at(ranking) == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    assert recall_at(ranking, 1, total_relevant=2) == 0.25


def test_no_relevant_item_scores_zero_and_undefined_recall_is_an_error() -> None:
    ranking = R(0, 0, 0)
    assert hit_at(ranking, 10) == 0 and mrr_at(ranking) == 0
    with pytest.raises(ValueError):
        recall_at(ranking, 10, total_relevant=0)
    with pytest.raises(ValueError):
        ndcg_at(ranking, 10, total_relevant=0)


def test_relevant_item_below_the_cutoff_does_not_count() -> None:
    ranking = R(*([0] * 10 + [1]))
    assert hit_at(ranking, 10) == 0 and mrr_at(ranking, 10) == 0 and hit_at(ranking, 11) == 1


def test_duplicates_of_one_article_collapse_to_its_best_rank() -> None:
    passages = [("a", Ranked(False, 0.9)), ("a", Ranked(True, 0.8)), ("b", Ranked(True, 0.7)), ("a", Ranked(True, 0.6))]
    articles = first_per_article(passages)
    assert [a for a, _ in articles] == ["a", "b"]
    assert articles[0][1].score == 0.9


def _brute(ranking: list[Ranked], metric) -> float:  # type: ignore[no-untyped-def]
    """Average a metric over every order of tied items, computed on the tie-free orders."""
    groups = [list(g) for _, g in itertools.groupby(ranking, key=lambda r: r.score)]
    values = []
    for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
        flat = [Ranked(r.relevant, 1.0 - i / 1000) for i, r in enumerate(x for g in orders for x in g)]
        values.append(metric(flat))
    return mean(values)


rankings = st.lists(st.tuples(st.booleans(), st.sampled_from([0.9, 0.7, 0.5, 0.3])), min_size=1, max_size=7).map(
    lambda items: [Ranked(rel, score) for rel, score in sorted(items, key=lambda x: -x[1])]
)


@given(rankings, st.integers(1, 8))
@settings(deadline=None)  # the brute force walks up to 7! orders: a busy machine took 275 ms
def test_tie_aware_metrics_equal_the_average_over_tied_orders(ranking: list[Ranked], k: int) -> None:
    total = max(1, sum(r.relevant for r in ranking))
    assert hit_at(ranking, k) == pytest.approx(_brute(ranking, lambda r: hit_at(r, k)))
    assert mrr_at(ranking, k) == pytest.approx(_brute(ranking, lambda r: mrr_at(r, k)))
    assert recall_at(ranking, k, total) == pytest.approx(_brute(ranking, lambda r: recall_at(r, k, total)))
    assert ndcg_at(ranking, k, total) == pytest.approx(_brute(ranking, lambda r: ndcg_at(r, k, total)))


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("Pope Benedict XVI was laid to rest [1].", True),
        ("pope benedict xvi", True),
        ("Either Pope Benedict XVI or Pope Paul VI [1].", False),  # hedging between choices
        ("Pope Paul VI [1].", False),
        ("The archive has no article that answers this question.", False),
    ],
)
def test_answer_accuracy_needs_the_gold_and_no_other_choice(answer: str, correct: bool) -> None:
    choices = ["Pope John Paul II", "Pope Paul VI", "Pope Pius XII", "Pope Benedict XVI"]
    assert answer_correct(answer, ["Pope Benedict XVI"], choices) is correct


def test_citation_validity_and_support() -> None:
    assert citation_validity("A [1]. B [2]. C [3].", {1: "a", 2: "b"}, {"a", "z"}) == pytest.approx(1 / 3)
    assert citation_validity("No markers.", {}, set()) is None
    assert citation_support(["Mardan Salih commands it.", "Unrelated."], ["mardan salih"]) == 0.5
    assert citation_support([], ["x"]) is None


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_questions() -> None:
    small = bootstrap_ci([1, 0] * 10)
    large = bootstrap_ci([1, 0] * 500)
    assert small.low < 0.5 < small.high and small.n == 20
    assert (large.high - large.low) < (small.high - small.low) / 3


def test_paired_comparison_tells_a_real_difference_from_noise() -> None:
    better = [1.0] * 40 + [0.0] * 10
    worse = [1.0] * 20 + [0.0] * 30
    assert paired_comparison(better, worse).significant
    assert paired_comparison(better, better[::-1][::-1]).p_value == 1.0
    noisy = paired_comparison([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0])
    assert not noisy.significant


POPES = ["Pope John Paul II", "Pope Paul VI", "Pope Pius XII", "Pope Benedict XVI"]


@pytest.mark.parametrize(
    ("short", "gold", "choices", "correct"),
    [
        ("Mardan Salih", ["Mardan Salih"], None, True),
        ("mardan  SALIH", ["Mardan Salih"], None, True),  # case and spacing do not matter
        ("Commander Mardan Salih", ["Mardan Salih"], None, True),  # contains the gold
        ("Mardan Salih's", ["Mardan Salih"], None, True),
        ("Salih", ["Mardan Salih"], None, True),  # most of it: one of two words, 5 characters
        ("Salih, Mardan", ["Mardan Salih"], None, True),  # every word of the gold
        ("Benedict XVI", ["Pope Benedict XVI"], POPES, True),
        ("Benedict", ["Pope Benedict XVI"], POPES, False),  # one word of three is not most of it
        ("Pope", ["Pope Benedict XVI"], POPES, False),  # and names every choice
        ("Pope Benedict XVI", ["Pope Benedict XVI"], POPES, True),
        ("Pope Benedict XVI or Pope Paul VI", ["Pope Benedict XVI"], POPES, False),  # a hedge names another choice
        ("Pope Paul", ["Pope Paul VI"], POPES, False),  # most of "Pope John Paul II" too
        ("Pope Paul VI", ["Pope Paul VI"], POPES, True),  # "Paul VI" is not in "John Paul II"
        ("99 percent", ["99 percent"], None, True),
        ("99", ["99 percent"], None, False),  # under 4 characters a part names nothing
        ("99 percent secure", ["99 percent"], None, True),
        ("Ukraine", ["UK"], None, False),  # not inside a longer word
        ("the UK", ["UK"], None, True),
        ("Bank of England", ["the Bank of England"], None, True),  # function words do not count
        ("Imad Al-Maliki", ["Imad Al-Maliki", "Imad al-Maliki"], None, True),
        ("Al-Maliki", ["Imad Al-Maliki"], None, True),
        ("Maliki", ["Imad Al-Maliki"], None, False),
        ("Peshmerga", ["Mardan Salih"], None, False),
        ("Salih Mardan Rashid", ["Mardan Salih"], None, False),  # a word not in the gold
        ("", ["Mardan Salih"], None, False),
        (None, ["Mardan Salih"], None, False),  # no short answer is a wrong one
        ("Paris", ["Paris", "Lyon"], ["Paris", "Lyon", "Nice"], True),  # several gold strings are all "right"
        ("Paris", ["Paris"], ["Paris", "Paris, France"], True),  # a choice overlapping the gold is not "other"
    ],
)
def test_short_answer_accuracy(short: str | None, gold: list[str], choices: list[str] | None, correct: bool) -> None:
    assert short_answer_correct(short, gold, choices) is correct


names = st.from_regex(r"[A-Za-z]{4,8}( [A-Za-z]{4,8}){0,2}", fullmatch=True)
padding = st.sampled_from(["", "Commander ", "It was ", "(", "'"])


@given(names, padding, st.sampled_from(["", " said", ".", ")", "'s"]))
def test_a_short_answer_that_contains_the_gold_is_right(gold: str, before: str, after: str) -> None:
    assert short_answer_correct(f"{before}{gold.swapcase()}{after}", [gold])


@given(names, names)
def test_a_short_answer_naming_only_part_of_a_gold_names_at_least_half_its_words(gold: str, short: str) -> None:
    if short_names(short, gold) and gold.casefold() not in short.casefold():
        part, whole = set(short.casefold().split()), set(gold.casefold().split())
        assert part <= whole and 2 * len(part) >= len(whole)


def test_reliability_bins_and_ece_by_hand() -> None:
    confidences = [0.05, 0.15, 0.15, 0.95, 1.0]
    correct = [False, True, False, True, True]
    bins = reliability_bins(confidences, correct)
    assert [b.count for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]  # 1.0 falls in the last bin
    assert bins[1].confidence == pytest.approx(0.15) and bins[1].accuracy == 0.5
    assert math.isnan(bins[2].confidence) and math.isnan(bins[2].accuracy)
    assert (bins[9].low, bins[9].high) == (0.9, 1.0)
    # |0 - 0.05| * 1/5 + |0.5 - 0.15| * 2/5 + |1 - 0.975| * 2/5
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.05 / 5 + 0.35 * 2 / 5 + 0.025 * 2 / 5)


def test_a_calibrated_reader_has_no_calibration_error() -> None:
    confidences = [0.25] * 4 + [0.75] * 4
    correct = [True, False, False, False, True, True, True, False]
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.0)
    assert math.isnan(expected_calibration_error([], []))


def test_calibration_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        reliability_bins([0.5, 1.2], [True, False])
    with pytest.raises(ValueError):
        reliability_bins([0.5], [True, False])
    with pytest.raises(ValueError):
        expected_calibration_error([0.5], [True], bins=0)


answers = st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=40)


@given(answers, st.integers(1, 20))
def test_calibration_properties(items: list[tuple[float, bool]], n_bins: int) -> None:
    confidences, correct = [c for c, _ in items], [r for _, r in items]
    bins = reliability_bins(confidences, correct, n_bins)
    assert len(bins) == n_bins and sum(b.count for b in bins) == len(items)
    for b in bins:
        if b.count:
            assert b.low - 1e-9 <= b.confidence <= b.high + 1e-9
            assert 0.0 <= b.accuracy <= 1.0
    ece = expected_calibration_error(confidences, correct, n_bins)
    assert 0.0 <= ece <= 1.0
    assert ece == pytest.approx(expected_calibration_error(confidences[::-1], correct[::-1], n_bins))
    # One bin: the gap between the mean confidence and the accuracy, which finer bins can only widen.
    one = expected_calibration_error(confidences, correct, 1)
    assert one == pytest.approx(abs(mean(confidences) - mean(map(float, correct))))
    assert ece >= one - 1e-9
