"""docs/configuration.md, written from the settings model so that the page cannot drift from the code.

``python -m backend.settings_doc > docs/configuration.md`` (or ``make docs``) writes it; tests/test_docs.py
fails when the committed page differs. Secrets are never printed: a ``SecretStr`` default shows as set or
unset, not as its value.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from backend.settings import Settings

PAGE = Path("docs/configuration.md")
COMMAND = "make docs"

_INTRO = f"""\
# Configuration

Generated from `backend/settings.py` by `{COMMAND}` (`python -m backend.settings_doc > {PAGE}`); do not edit
by hand. `tests/test_docs.py` fails when this page differs from what the settings model says, so every
default below is the one the code uses.

Every setting is an environment variable, or a line of a `.env` file in the working directory. Groups nest
with `__`: `BYLINE_LLM__PROVIDER=ollama`. Values are read as their type says: `true`/`false`, numbers, and
JSON for objects. Names are not case-sensitive. Secrets are shown here as set or unset, never by value.
"""


def render(model: type[BaseSettings] = Settings) -> str:
    """The whole page: the top-level settings first, then one section per group."""
    prefix = str(model.model_config.get("env_prefix", ""))
    delimiter = str(model.model_config.get("env_nested_delimiter", "__"))
    top = [(name, field) for name, field in model.model_fields.items() if _group(field) is None]
    parts = [_INTRO, _table(prefix, top)]
    for name, field in model.model_fields.items():
        group = _group(field)
        if group is None:
            continue
        parts.append(f"## `{prefix}{name.upper()}{delimiter}*`\n")
        if group.__doc__:
            parts.append(_paragraph(group.__doc__) + "\n")
        parts.append(_table(f"{prefix}{name.upper()}{delimiter}", list(_flatten(group, delimiter))))
    return "\n".join(parts)


def _flatten(model: type[BaseModel], delimiter: str, path: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Fields of a group, with any group nested inside it spelled out as ``INNER__FIELD``."""
    for name, field in model.model_fields.items():
        inner = _group(field)
        if inner is None:
            yield path + name, field
        else:
            yield from _flatten(inner, delimiter, f"{path}{name}{delimiter}")


def _group(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _table(prefix: str, fields: list[tuple[str, FieldInfo]]) -> str:
    rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in fields:
        cells = (
            f"`{prefix}{name.upper()}`",
            _type(field.annotation) + _bounds(field),
            _default(field),
            field.description or "",
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _paragraph(doc: str) -> str:
    return " ".join(doc.split())


def _type(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        named = [a for a in args if a is not type(None)]
        text = " or ".join(_type(a) for a in named)
        return text + ", or unset" if len(named) < len(args) else text
    if origin is dict:
        return "JSON object of " + _type(args[1]) + " values" if args else "JSON object"
    if origin in (list, tuple, set, frozenset):
        return "JSON list of " + _type(args[0]) if args else "JSON list"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type):
        return {"str": "text", "int": "integer", "float": "number", "bool": "true or false"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


# The constraints pydantic keeps in a field's metadata, and how each reads on the page.
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥ {}"),
    (annotated_types.Gt, "gt", "> {}"),
    (annotated_types.Le, "le", "≤ {}"),
    (annotated_types.Lt, "lt", "< {}"),
    (annotated_types.MinLen, "min_length", "at least {} characters"),
    (annotated_types.MaxLen, "max_length", "at most {} characters"),
)


def _bounds(field: FieldInfo) -> str:
    words = [
        form.format(_number(getattr(item, attr)))
        for item in field.metadata
        for kind, attr, form in _BOUNDS
        if isinstance(item, kind)
    ]
    return f" ({', '.join(words)})" if words else ""


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    return _value(value)


def _value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "set (secret)" if value.get_secret_value() else "unset"
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, dict):
        # Values of a dict may be secrets too: keys are shown, values never.
        return "`" + json.dumps({k: "***" if isinstance(v, SecretStr) else v for k, v in value.items()}) + "`"
    if isinstance(value, list | tuple | set | frozenset):
        return "`" + json.dumps([_plain(v) for v in value]) + "`"
    return f"`{value}`"


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, Enum):
        return value.value
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


if __name__ == "__main__":
    print(render(), end="")
