"""Events posted to a saved question's webhook, signed, retried with a doubling backoff that survives a restart.

Each delivery is one POST of the event as JSON (``backend.store.watches.event_payload``) with:

- ``X-Byline-Event-Id``: the event's id (the same on every retry: a receiver drops ids it has seen);
- ``X-Byline-Timestamp``: seconds since the epoch when this attempt was signed (a receiver refuses old ones);
- ``X-Byline-Signature``: ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` under the watch's
  secret, which ``POST /watches`` returned once.

A 2xx answer delivers it; anything else, a timeout or a refused address is a failure, tried again after
``watches.webhook_backoff_s``, doubled each time, up to ``watches.webhook_attempts`` tries. Redirects are not
followed. The URL is checked against the SSRF rule (``backend.core.net``) when the watch is made and again
before every attempt, since what a name resolves to can change, and the delivery connects to the addresses
that check approved and no others (``backend.core.pinned``).

Every worker and replica of a server runs a sender on the same deliveries. Each attempt claims its one
delivery first, for a lease longer than the attempt's timeouts (``WatchStore.due``), so no other sender takes
it while it is under way. (A batch claimed under one lease would run out of it behind a few slow receivers,
and another sender would deliver the rest a second time.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpcore
import httpx

from backend.core.net import Network, Refused, check_url
from backend.core.pinned import PinnedBackend, PinnedTransport
from backend.core.types import Delivery
from backend.settings import WatchSettings
from backend.store.watches import WatchStore, event_payload

log = logging.getLogger("byline.webhooks")

SIGNATURE_HEADER = "X-Byline-Signature"
TIMESTAMP_HEADER = "X-Byline-Timestamp"
EVENT_HEADER = "X-Byline-Event-Id"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300.0) -> bool:
    """What a receiver does (docs/operations.md shows it standalone): the signature matches, in constant
    time, and the timestamp is recent, so a captured request cannot be replayed later."""
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        return False
    return age <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSender:
    def __init__(
        self,
        watches: WatchStore,
        settings: WatchSettings,
        allowed: Sequence[Network] = (),
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._watches = watches
        self._settings = settings
        self._allowed = tuple(allowed)
        # Connections go only to the addresses the SSRF check approved for the delivery (``backend.core.pinned``).
        self._backend = PinnedBackend()
        self._client = httpx.Client(
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            transport=transport or PinnedTransport(self._backend),
            trust_env=False,  # no proxy from the environment: it would connect where the check did not look
            headers={"User-Agent": "Byline-Webhooks/1"},
        )
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_due(self) -> int:
        """Every delivery whose time has come, once each; how many were delivered."""
        delivered = 0
        while not self._stopping.is_set():
            # One at a time: the lease covers one attempt (connect, send, read: a timeout each, and a margin).
            due = self._watches.due(limit=1, lease_s=self._settings.webhook_timeout_s * 3 + 30)
            if not due:
                break
            delivered += self._deliver(due[0])
        return delivered

    def _deliver(self, delivery: Delivery) -> bool:
        event = self._watches.event(delivery.event_id)
        if event is None:  # the watch was deleted meanwhile, its events with it
            return False
        body = json.dumps(event_payload(event), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event.id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(delivery.secret, timestamp, body),
        }
        try:
            addresses = check_url(delivery.url, self._allowed)
            deadline = time.monotonic() + self._settings.webhook_timeout_s
            with self._backend.hop((urlsplit(delivery.url).hostname or "").lower(), addresses, deadline):
                response = self._client.post(delivery.url, content=body, headers=headers)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except Refused as exc:
            error = f"refused: {exc}"
        except (httpx.HTTPError, httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is None:
            self._watches.delivered(event.id)
            return True
        attempts = self._settings.webhook_attempts
        self._watches.failed(event.id, error, attempts=attempts, backoff_s=self._settings.webhook_backoff_s)
        if delivery.attempts + 1 >= attempts:
            log.warning("gave up delivering event %s to %s: %s", event.id, delivery.url, error)
        return False

    def notify(self, *_: object) -> None:
        """New events: deliver them now rather than at the next scheduled wake."""
        self._wake.set()

    def start(self) -> WebhookSender:
        self._thread = threading.Thread(target=self._loop, name="byline-webhooks", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.deliver_due()
                next_at = self._watches.next_due()
            except Exception:
                log.exception("delivering webhooks failed")
                next_at = None
            wait = 60.0 if next_at is None else min(max(next_at - time.time(), 0.05), 60.0)
            self._wake.wait(wait)
            self._wake.clear()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._client.close()
