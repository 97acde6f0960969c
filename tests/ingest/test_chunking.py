from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.core.text import split_sentences
from backend.core.types import Article
from backend.embedding import SentenceTransformerEmbedder
from ingest.chunking import chunk_article, header

SENTENCES = [
    "Mardan Salih commands the sector.",
    "The delegation arrived on Wednesday from Tuz Khurmatu.",
    "Officials said the area was 99 percent secure, a figure disputed by residents.",
    "Patrols run at night.",
]


def _chunks(embedder: SentenceTransformerEmbedder, article: Article, max_tokens: int = 40, overlap: int = 12):  # type: ignore[no-untyped-def]
    return chunk_article(
        article,
        embedder.count_tokens,
        model_max_tokens=embedder.max_tokens,
        max_tokens=max_tokens,
        overlap_tokens=overlap,
    )


def test_chunks_fit_the_model_window_with_their_header(embedder: SentenceTransformerEmbedder) -> None:
    text = " ".join(SENTENCES * 30)
    article = Article(id="a", text=text, title="A title", source="Outlet")
    chunks = chunk_article(
        article, embedder.count_tokens, model_max_tokens=embedder.max_tokens, max_tokens=10_000, overlap_tokens=40
    )
    assert len(chunks) > 3
    assert max(embedder.count_tokens([c.embed_text for c in chunks])) <= embedder.max_tokens
    assert all(c.embed_text.startswith(header(article) + "\n") for c in chunks)
    assert all(c.chunk.text in text for c in chunks)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=25))
def test_every_sentence_lands_whole_in_some_chunk(embedder: SentenceTransformerEmbedder, picked: list[str]) -> None:
    text = " ".join(f"{s[:-1]} number {i}." for i, s in enumerate(picked))
    chunks = _chunks(embedder, Article(id="a", text=text))
    for sentence in split_sentences(text):
        assert any(sentence in c.chunk.text for c in chunks)
    assert [c.chunk.position for c in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_overlap_by_a_sentence(embedder: SentenceTransformerEmbedder) -> None:
    chunks = _chunks(embedder, Article(id="a", text=" ".join(SENTENCES * 3)), max_tokens=40, overlap=15)
    first_sentences_next = [split_sentences(c.chunk.text)[0] for c in chunks[1:]]
    assert all(s in prev.chunk.text for s, prev in zip(first_sentences_next, chunks, strict=False))


def test_a_sentence_longer_than_a_chunk_is_split_into_word_windows(embedder: SentenceTransformerEmbedder) -> None:
    long_sentence = " ".join(["word"] * 300) + "."
    chunks = _chunks(embedder, Article(id="a", text=long_sentence), max_tokens=50, overlap=0)
    assert len(chunks) >= 6
    assert max(embedder.count_tokens([c.chunk.text for c in chunks])) <= 50
    assert sum(c.chunk.text.count("word") for c in chunks) == 300


def test_chunk_ids_are_stable_and_change_with_the_text(embedder: SentenceTransformerEmbedder) -> None:
    article = Article(id="a", text=" ".join(SENTENCES))
    ids = [c.chunk.id for c in _chunks(embedder, article)]
    assert ids == [c.chunk.id for c in _chunks(embedder, article)]
    changed = [c.chunk.id for c in _chunks(embedder, Article(id="a", text=" ".join(SENTENCES) + " New."))]
    assert ids[0].startswith("a:0:") and changed[-1] not in ids
