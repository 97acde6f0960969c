"""The documentation stays true: the configuration page is the settings model's, the README stays a front
door, and what the pages name (files, sections, settings, make targets) exists."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.settings import Settings
from backend.settings_doc import COMMAND, PAGE, render

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT = 12 * 1024
# Read by the chat, the reliability suite and the browser test, not by the settings model.
OTHER_VARIABLES = {"BYLINE_API_URL", "BYLINE_API_KEY", "BYLINE_SOAK", "BYLINE_SCREENSHOT"}

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def test_configuration_page_is_the_settings_model() -> None:
    committed = (ROOT / PAGE).read_text(encoding="utf-8")
    assert committed == render(), (
        f"{PAGE} differs from backend/settings.py: run `{COMMAND}` (or `python -m backend.settings_doc > {PAGE}`)"
        " and commit the page"
    )


def _fields(model: type[BaseModel], path: str = "") -> list[tuple[str, str | None]]:
    found = []
    for name, field in model.model_fields.items():
        inner = field.annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            found += _fields(inner, f"{path}{name}.")
        else:
            found.append((path + name, field.description))
    return found


def test_every_setting_says_what_it_means() -> None:
    bare = [name for name, description in _fields(Settings) if not description]
    assert not bare, f"settings without Field(description=...), so docs/configuration.md cannot explain them: {bare}"


class _Secrets(BaseModel):
    headers: dict[str, SecretStr] = Field(default_factory=lambda: {"X-Token": SecretStr("header-secret-9")})


class _SecretSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="T_", env_nested_delimiter="__")

    token: SecretStr = Field(default=SecretStr("top-secret-7"), description="a key")
    empty: SecretStr = Field(default=SecretStr(""), description="no key")
    group: _Secrets = _Secrets()


def test_secret_defaults_are_never_printed() -> None:
    page = render(_SecretSettings)
    assert "top-secret-7" not in page
    assert "header-secret-9" not in page
    assert "| `T_TOKEN` | secret | set (secret) | a key |" in page
    assert "| `T_EMPTY` | secret | unset | no key |" in page
    assert "`T_GROUP__HEADERS`" in page


def test_readme_is_a_front_door() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_LIMIT, f"README.md is {size:,} bytes; keep it under 12 KB and move detail into docs/"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug, n = _slug(heading), 0
        while (slug if n == 0 else f"{slug}-{n}") in anchors:
            n += 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_somewhere(page: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no such section)")
    assert not broken, f"{page.relative_to(ROOT)} links to what is not there: {broken}"


def _variables() -> set[str]:
    names = {"BYLINE_" + name.replace(".", "__").upper() for name, _ in _fields(Settings)}
    groups = {"BYLINE_" + name.upper() + "__" for name in Settings.model_fields}
    return names | groups | OTHER_VARIABLES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_settings_named_in_the_docs_exist(page: Path) -> None:
    named = set(re.findall(r"\bBYLINE_[A-Z0-9_]*[A-Z0-9_]", page.read_text(encoding="utf-8")))
    unknown = sorted(named - _variables())
    assert not unknown, f"{page.relative_to(ROOT)} names settings that backend/settings.py lacks: {unknown}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_make_targets_named_in_the_docs_exist(page: Path) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"(?:`|^)make ([a-z][a-z-]*)", page.read_text(encoding="utf-8"), re.M))
    assert named <= targets, f"{page.relative_to(ROOT)} names make targets the Makefile lacks: {named - targets}"
