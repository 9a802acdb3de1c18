"""The JSON schemas of docs/json.md, read from the page itself: each ```json block whose
"$id" names the document it describes. Tests validate commands' --json output with them."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parents[2] / "docs" / "json.md"


@cache
def schemas() -> dict[str, dict[str, Any]]:
    """$id -> schema, for every schema block on the page."""
    found: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```json\n(.*?)```", PAGE.read_text(), re.DOTALL):
        schema = json.loads(block)
        found[schema["$id"]] = schema
    return found


def validate(name: str, document: Any) -> None:
    """Raise jsonschema's ValidationError when ``document`` breaks schema ``name``."""
    import jsonschema

    schema = schemas()[name]
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
