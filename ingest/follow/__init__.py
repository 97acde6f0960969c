"""Following a live archive: RSS/Atom feeds and news sitemaps fetched politely and safely, then parsed.

``fetch`` is the only way Byline reaches a followed source or its pages: the SSRF rule of
``backend.core.net`` on every hop, robots.txt, one request per host at a time, and hard limits on time
and size. ``parse`` turns what came back into entries and article records; the file loaders of
``ingest.loaders`` use the same parser, so a feed reads the same from disk as from the web.
"""
