"""Sentence-aware chunks that fit the embedding model's window.

A chunk longer than the model's word-piece limit is silently truncated when embedded, and
its tail can never be found; so chunks are measured with the model's own tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backend.core.text import sentence_spans, text_hash
from backend.core.types import Article, Chunk

TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True, slots=True)
class PreparedChunk:
    chunk: Chunk
    embed_text: str  # what the model sees: a short header and the chunk's own words


def header(article: Article | Chunk) -> str:
    parts = [
        article.title,
        article.source or "",
        article.published_at.date().isoformat() if article.published_at else "",
    ]
    return " | ".join(p for p in parts if p)


def embed_text(chunk: Chunk, with_header: bool) -> str:
    """What the model sees for a chunk: its words, after a "title | outlet | date" header where
    ``chunking.header`` is on. Ingest and ``byline reindex`` both call this, so a re-embedded chunk gets
    the vector an ingest would have written."""
    head = header(chunk) if with_header else ""
    return f"{head}\n{chunk.text}" if head else chunk.text


def _pieces(text: str, count_tokens: TokenCounter, budget: int) -> list[tuple[int, int, int]]:
    """Sentence spans with token counts; a sentence over ``budget`` is cut into word windows."""
    spans = list(sentence_spans(text))
    counts = count_tokens([text[s:e] for s, e in spans]) if spans else []
    pieces: list[tuple[int, int, int]] = []
    for (start, end), tokens in zip(spans, counts, strict=True):
        if tokens <= budget:
            pieces.append((start, end, tokens))
            continue
        words = [(m_start, m_end) for m_start, m_end in _word_spans(text, start, end)]
        per_piece = max(1, len(words) * budget // tokens)
        for i in range(0, len(words), per_piece):
            window = words[i : i + per_piece]
            piece_start, piece_end = window[0][0], window[-1][1]
            pieces.append((piece_start, piece_end, count_tokens([text[piece_start:piece_end]])[0]))
    return pieces


def _word_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, i = [], start
    while i < end:
        while i < end and text[i].isspace():
            i += 1
        j = i
        while j < end and not text[j].isspace():
            j += 1
        if j > i:
            spans.append((i, j))
        i = j
    return spans


def chunk_article(
    article: Article,
    count_tokens: TokenCounter,
    *,
    model_max_tokens: int,
    max_tokens: int,
    overlap_tokens: int,
    with_header: bool = True,
    cluster_id: str | None = None,
) -> list[PreparedChunk]:
    head = header(article) if with_header else ""
    head_tokens = count_tokens([head])[0] + 1 if head else 0
    budget = max(16, min(max_tokens, model_max_tokens - head_tokens))
    pieces = _pieces(article.text, count_tokens, budget)

    groups: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    used = 0
    for piece in pieces:
        if current and used + piece[2] > budget:
            groups.append(current)
            # Carry the last sentences (up to ``overlap_tokens``) so a fact split across the
            # boundary is still whole in one chunk.
            carry: list[tuple[int, int, int]] = []
            carried = 0
            for prev in reversed(current):
                if carried + prev[2] > overlap_tokens or carried + prev[2] + piece[2] > budget:
                    break
                carry.insert(0, prev)
                carried += prev[2]
            current, used = carry, carried
        current.append(piece)
        used += piece[2]
    if current:
        groups.append(current)

    out = []
    for position, group in enumerate(groups):
        text = article.text[group[0][0] : group[-1][1]]
        chunk = Chunk(
            id=f"{article.id}:{position}:{text_hash(text, 12)}",
            article_id=article.id,
            position=position,
            text=text,
            title=article.title,
            url=article.url,
            source=article.source,
            published_at=article.published_at,
            cluster_id=cluster_id,
        )
        out.append(PreparedChunk(chunk=chunk, embed_text=embed_text(chunk, with_header)))
    return out
