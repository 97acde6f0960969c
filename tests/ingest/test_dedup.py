import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.dedup import NEAR_DUPLICATE_JACCARD, StoryClusterer, exact_key, jaccard, minhash, shingles

WORDS = "port strike ships union raise night shift harbour dockers talks offer workers vote deal".split()


def _story(seed: int, length: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(length))


def test_exact_key_ignores_case_and_whitespace_only() -> None:
    assert exact_key("The  port\nreopened.") == exact_key("the port reopened.")
    assert exact_key("The port reopened.") != exact_key("The port reopened!")


def test_a_lightly_edited_copy_is_a_near_duplicate_and_another_story_is_not() -> None:
    story = _story(1)
    words = story.split()
    edited = " ".join(["Updated:", *words[:40], "reportedly", *words[40:110]])  # new lead word, an insert, a cut end
    assert jaccard(minhash(story), minhash(edited)) >= NEAR_DUPLICATE_JACCARD
    assert jaccard(minhash(story), minhash(_story(2))) < 0.1


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 100))
def test_minhash_estimates_the_shingle_jaccard(seed: int, cut: int) -> None:
    a = _story(seed)
    b = " ".join(a.split()[cut:] + _story(seed + 1, cut).split())
    sa, sb = shingles(a), shingles(b)
    true = len(sa & sb) / len(sa | sb)
    assert abs(jaccard(minhash(a), minhash(b)) - true) < 0.2


def test_clusterer_joins_the_cluster_of_the_most_similar_earlier_article() -> None:
    stored = {"old": minhash(_story(1))}
    clusters = {"old": "cluster-of-old"}
    clusterer = StoryClusterer(lambda bands: stored, lambda ids: {i: clusters[i] for i in ids if i in clusters})
    near = " ".join(_story(1).split()[5:])
    assert clusterer.assign("copy", minhash(near))[0] == "cluster-of-old"
    assert clusterer.assign("other", minhash(_story(9)))[0] == "other"
    # Articles of the same run that are not stored yet are found too.
    stored.clear()
    assert clusterer.assign("other-copy", minhash(" ".join(_story(9).split()[3:])))[0] == "other"
    clusterer.flush()
    assert clusterer.assign("late", minhash(_story(9)))[0] == "late"
    assert jaccard(minhash(""), minhash(_story(9))) == 0.0  # an empty text is no one's duplicate
