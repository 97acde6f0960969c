"""What every ``Embedder`` does, whatever runs the model.

An implementation's suite subclasses ``EmbedderContract`` and provides ``subject``: the embedder under test
(loaded or not; tests share it, so it should be built once per session where loading is slow).
"""

from __future__ import annotations

import numpy as np

from backend.core.encoder import EncoderIdentity
from backend.core.protocols import Embedder

QUESTION = "Who commands the Qaratapa-Hamrin sector?"
ANSWER = "Mardan Salih, the Peshmerga commander of the sector, said cooperation had improved security."
UNRELATED = "Ardenvale Rovers won the regional cup final on Sunday."
LONG = "Kirkuk " * 400  # beyond any small model's window
TEXTS = [QUESTION, ANSWER, UNRELATED, "x", LONG]


class EmbedderContract:
    # Vectors of unit length, so cosine similarity is a dot product (every Byline embedder promises it).
    normalised = True
    atol = 1e-4  # batches are padded to their longest text, which moves a vector by float noise

    def test_it_is_an_embedder(self, subject: Embedder) -> None:
        subject.load()
        subject.load()  # loading twice is harmless
        assert isinstance(subject, Embedder)

    def test_vectors_have_the_stated_dimension(self, subject: Embedder) -> None:
        vectors = subject.embed_documents(TEXTS)
        assert len(vectors) == len(TEXTS) and subject.dimension > 0
        assert {len(v) for v in vectors} == {subject.dimension} == {len(subject.embed_query(QUESTION))}
        assert subject.identity().dimension == subject.dimension
        assert subject.embed_documents([]) == []

    def test_vectors_are_normalised(self, subject: Embedder) -> None:
        if self.normalised:
            norms = np.linalg.norm(np.asarray(subject.embed_documents(TEXTS)), axis=1)
            assert np.allclose(norms, 1.0, atol=1e-4)

    def test_vectors_are_deterministic_and_do_not_depend_on_the_batch(self, subject: Embedder) -> None:
        batch = np.asarray(subject.embed_documents(TEXTS))
        assert np.allclose(batch, subject.embed_documents(TEXTS), atol=self.atol)
        alone = np.asarray([subject.embed_documents([t])[0] for t in TEXTS])
        assert np.allclose(batch, alone, atol=self.atol)
        assert np.allclose(subject.embed_query(ANSWER), batch[1], atol=self.atol)  # a query is embedded alike

    def test_a_related_passage_is_nearer_than_an_unrelated_one(self, subject: Embedder) -> None:
        q, answer, unrelated = (np.asarray(v) for v in subject.embed_documents([QUESTION, ANSWER, UNRELATED]))
        assert float(q @ answer) > float(q @ unrelated) + 0.1

    def test_the_identity_is_stable_and_survives_its_json(self, subject: Embedder) -> None:
        identity = subject.identity()
        assert identity == subject.identity() and identity.compatible(subject.identity())
        assert EncoderIdentity.from_json(identity.to_json()) == identity

    def test_tokens_are_counted_without_truncation(self, subject: Embedder) -> None:
        counts = subject.count_tokens(TEXTS)
        assert len(counts) == len(TEXTS) and all(n > 0 for n in counts)
        assert counts[TEXTS.index(LONG)] > subject.max_tokens > counts[TEXTS.index(ANSWER)] > counts[TEXTS.index("x")]
        assert subject.count_tokens([QUESTION]) == counts[:1] and subject.count_tokens([]) == []
