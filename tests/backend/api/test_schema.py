"""schemathesis over the OpenAPI schema: every route, valid and invalid input, with and without keys.

No 5xx, responses as documented (status, content type, body schema), and with keys configured no
route but the probes answers without one. Runs in process over ASGI on an archive of its own
(the demo articles), since generated requests write, delete and give feedback.
"""

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import BaseSchema, GenerationMode
from schemathesis.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from backend.api.app import create_app
from backend.embedding import SentenceTransformerEmbedder
from backend.services import build_services
from backend.settings import ApiSettings, Settings
from ingest.pipeline import Ingestor
from ingest.writer import with_writer
from tests.conftest import DEMO

KEY, ADMIN = "reader-key", "admin-key"
# `make test` fuzzes with a fixed seed (derandomised), so CI passes or fails by the code, never by the draw;
# `make soak` (BYLINE_SOAK=1) searches at random, ten times longer, for what the fixed draw misses.
SOAK = os.environ.get("BYLINE_SOAK") == "1"
EXAMPLES = 200 if SOAK else 20  # per operation and generation mode; the fixed run takes about a minute
OPEN = ("/health", "/ready")


def _schema(data_dir: object, embedder: SentenceTransformerEmbedder, **keys: SecretStr) -> BaseSchema:
    settings = Settings(data_dir=data_dir, api=ApiSettings(rate_per_minute=0), **keys)  # type: ignore[arg-type]
    services = with_writer(build_services(settings, embedder))
    Ingestor(settings, embedder, services.store, services.registry).ingest([DEMO])
    # The schema itself needs a key where keys are configured, like every route but the probes.
    headers = {"X-API-Key": keys["api_keys"].get_secret_value()} if keys else {}
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(services), headers=headers)


@pytest.fixture(scope="module")
def open_schema(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> BaseSchema:
    return _schema(tmp_path_factory.mktemp("open") / "data", embedder)


@pytest.fixture(scope="module")
def keyed_schema(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> BaseSchema:
    keys = {"api_keys": SecretStr(KEY), "admin_keys": SecretStr(ADMIN)}
    return _schema(tmp_path_factory.mktemp("keyed") / "data", embedder, **keys)


def _operations(schema: BaseSchema) -> Iterator[Any]:
    for result in schema.get_all_operations():
        yield result.ok()


def _excluded(operation: Any, keyed: bool) -> list[Any]:
    # Without keys configured the routes are open by design, though the schema names the schemes.
    # Rules across fields (a date range in order) are not in the schema: their 422s are right.
    excluded = [positive_data_acceptance] if keyed else [positive_data_acceptance, ignored_auth]
    if operation.method != "post" or operation.path == "/articles/files":
        # On the wire a query value or a multipart part is only text or bytes: a generated
        # "wrong type" there arrives as a valid string or file. JSON bodies keep the check.
        excluded.append(negative_data_rejection)
    return excluded


def _fuzz(operation: Any, headers: dict[str, str] | None, mode: GenerationMode, keyed: bool) -> None:
    excluded = _excluded(operation, keyed)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not SOAK,
    )
    def check(case: schemathesis.Case) -> None:
        # Generated credentials go; ours are passed as explicit ones, which the auth checks then vary.
        case.headers = {k: v for k, v in (case.headers or {}).items() if k not in ("Authorization", "X-API-Key")}
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()


def _run(schema: BaseSchema, headers: dict[str, str] | None, mode: GenerationMode, keyed: bool) -> list[str]:
    """Every operation under hypothesis; the failures, one line each (all operations run)."""
    failures: list[str] = []
    for operation in _operations(schema):
        try:
            _fuzz(operation, headers, mode, keyed)
        except Unsatisfiable:  # nothing invalid to send: a route without parameters or body
            continue
        except (Exception, BaseExceptionGroup) as exc:  # collected so one report names every failing route
            failures.append(f"{operation.label}: {str(exc).strip()[:1500]}")
    return failures


def _statuses_without_a_valid_key(operation: Any) -> set[int]:
    seen: set[int] = set()
    wrong_keys = st.sampled_from([{}, {"X-API-Key": "nope"}, {"Authorization": "Bearer nope"}])

    @given(case=operation.as_strategy(), wrong=wrong_keys)
    @settings(
        max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=not SOAK
    )
    def check(case: schemathesis.Case, wrong: dict[str, str]) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k not in ("Authorization", "X-API-Key")}
        # A generated path the router cannot match (a lone "%", say) answers 401 too: without a valid key
        # nothing tells a client which paths exist.
        seen.add(case.call(headers=wrong).status_code)

    check()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_without_keys_no_route_fails_or_breaks_its_schema(open_schema: BaseSchema, mode: GenerationMode) -> None:
    failures = _run(open_schema, None, mode, keyed=False)
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {ADMIN}"}, {"X-API-Key": KEY}], ids=["admin", "reader"])
def test_with_keys_no_route_fails_or_breaks_its_schema(keyed_schema: BaseSchema, headers: dict[str, str]) -> None:
    failures = _run(keyed_schema, headers, GenerationMode.POSITIVE, keyed=True)
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_with_keys_configured_every_route_but_the_probes_refuses_a_missing_or_wrong_key(
    keyed_schema: BaseSchema,
) -> None:
    refused = {op.label: _statuses_without_a_valid_key(op) for op in _operations(keyed_schema)}
    for label, statuses in refused.items():
        if label.split(" ", 1)[1].startswith(OPEN):
            assert 401 not in statuses, label
        else:
            assert statuses == {401}, f"{label} answered {statuses} without a valid key"
    assert len(refused) >= 15
