"""Contract suites: one class per protocol of ``backend.core.protocols``, run against every implementation.

A base class (``VectorStoreContract``, ``LexicalStoreContract``, ``ArticleStoreContract``,
``ConversationStoreContract``, ``EmbedderContract``, ``RetrieverContract``) holds the behaviour the protocol
promises and is not collected itself. An implementation's suite is a ``Test...`` subclass that provides the
fixture the base class names (``make_store`` for the stores, ``subject`` for the rest); a new implementation,
a PostgreSQL store say, needs nothing more than that subclass to be held to the same behaviour.
"""
