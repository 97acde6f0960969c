"""A live demo feed: publishes the articles of demo/live/articles.jsonl one by one while ``make run`` is up.

``make demo-live`` runs it. It serves, on loopback, an RSS feed that gives only a summary of each article and
the article pages themselves, as a small news site would; it asks the running API to follow the feed and
to watch a question, then publishes an article every ``--every`` seconds. The chat shows them arrive (the
Archive page) and the watch fire (the Following page) once the article that answers it is published.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import threading
import time
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ARTICLES = Path(__file__).with_name("live") / "articles.jsonl"
QUESTION = "Who is the new head of the Tuz Khurmatu operations command?"


class Site:
    """The articles published so far, and the feed and pages that show them."""

    def __init__(self, articles: list[dict[str, Any]], base_url: str) -> None:
        self._articles = articles
        self._base = base_url
        self._published = 0
        self._lock = threading.Lock()

    def publish_next(self) -> dict[str, Any] | None:
        with self._lock:
            if self._published >= len(self._articles):
                return None
            self._published += 1
            return self._articles[self._published - 1]

    def page_url(self, article: dict[str, Any]) -> str:
        return f"{self._base}/news/{article['slug']}"

    def feed(self) -> bytes:
        with self._lock:
            shown = list(reversed(self._articles[: self._published]))
        items = "".join(
            "<item>"
            f"<title>{html.escape(a['title'])}</title>"
            f"<link>{self.page_url(a)}</link>"
            f'<guid isPermaLink="false">live-{a["slug"]}</guid>'
            f"<pubDate>{format_datetime(datetime.fromisoformat(a['published_at'].replace('Z', '+00:00')))}</pubDate>"
            f"<description>{html.escape(a['text'].split(chr(10))[0][:160])}</description>"
            "</item>"
            for a in shown
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Byline live demo</title><link>{self._base}/</link>"
            f"<description>Demo articles, published one by one</description>{items}</channel></rss>"
        ).encode()

    def page(self, slug: str) -> bytes | None:
        with self._lock:
            found = [a for a in self._articles[: self._published] if a["slug"] == slug]
        if not found:
            return None
        a = found[0]
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in a["text"].split("\n\n"))
        return (
            "<!doctype html><html><head>"
            f"<title>{html.escape(a['title'])}</title>"
            f'<meta property="og:site_name" content="{html.escape(a["source"])}">'
            f'<meta property="article:published_time" content="{a["published_at"]}">'
            f'<meta name="author" content="{html.escape(a["author"])}">'
            f'<link rel="canonical" href="{self.page_url(a)}">'
            "</head><body><nav><a href='/'>Home</a></nav><article>"
            f"<h1>{html.escape(a['title'])}</h1><p class='byline'>By {html.escape(a['author'])}</p>{paragraphs}"
            "</article><footer>Byline live demo</footer></body></html>"
        ).encode()


def serve(site: Site, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/feed.xml":
                self._send(200, "application/rss+xml", site.feed())
            elif self.path == "/robots.txt":
                self._send(200, "text/plain", b"User-agent: *\nAllow: /\n")
            elif self.path.startswith("/news/") and (body := site.page(self.path.removeprefix("/news/"))):
                self._send(200, "text/html; charset=utf-8", body)
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="demo-live-site", daemon=True).start()
    return server


def register(api: str, key: str | None, feed_url: str, every: float) -> None:
    """Follow the feed and watch the question through the API; say what the API answered."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
        try:
            answer = client.post("/feeds", json={"url": feed_url, "interval_s": max(every / 2, 1.0)})
        except httpx.HTTPError as exc:
            sys.exit(f"error: the API at {api} did not answer ({exc}); start it first with `make run`")
        if answer.status_code not in (201, 422):
            sys.exit(f"error: POST /feeds answered {answer.status_code}: {answer.text[:300]}")
        print(f"the API follows {feed_url}" + (" (already)" if answer.status_code == 422 else ""))
        watched = client.get("/watches")
        if watched.status_code == 200 and not any(w["question"] == QUESTION for w in watched.json()["watches"]):
            created = client.post("/watches", json={"question": QUESTION})
            print(f"watching {QUESTION!r}" if created.status_code == 201 else f"no watch: {created.text[:300]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="The running Byline API.")
    parser.add_argument("--key", default=None, help="An admin API key, where the API needs one.")
    parser.add_argument("--port", type=int, default=8765, help="The demo site's port on 127.0.0.1.")
    parser.add_argument("--every", type=float, default=20.0, help="Seconds between two articles.")
    args = parser.parse_args(argv)
    articles = [json.loads(line) for line in ARTICLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    site = Site(articles, f"http://127.0.0.1:{args.port}")
    server = serve(site, args.port)
    register(args.api, args.key, f"http://127.0.0.1:{args.port}/feed.xml", args.every)
    try:
        while (article := site.publish_next()) is not None:
            print(f"published: {article['title']} ({article['source']})", flush=True)
            time.sleep(args.every)
        print("all demo articles published; the site stays up until Ctrl-C", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
