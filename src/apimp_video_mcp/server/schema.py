"""Make generated input schemas readable by every MCP host.

Pydantic puts nested models under `$defs` and points at them with `$ref`. That is valid JSON
Schema, but several hosts do not resolve references (python-sdk issue 2586: Claude Desktop's
discovery, Copilot CLI, open-webui), so the nested `input` and `metadata` fields would vanish.
We publish each input schema with every local reference inlined, and with `Optional` fields
shown as their plain type (a model never needs to send null to leave a field out).
"""

from __future__ import annotations

import copy
from typing import Any, Final

_DEFS_PREFIX: Final = "#/$defs/"


def publishable_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with `$defs` inlined and `anyOf [X, null]` (default null) collapsed to X."""
    definitions = schema.get("$defs", {})
    inlined = _inline(schema, definitions, seen=())
    inlined.pop("$defs", None)
    result = _collapse_optional(inlined)
    assert isinstance(result, dict)
    return result


def _inline(node: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith(_DEFS_PREFIX):
        name = reference.removeprefix(_DEFS_PREFIX)
        if name in seen:
            raise ValueError(f"recursive schema reference {reference} cannot be inlined")
        target = copy.deepcopy(definitions[name])
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        merged = {**target, **siblings}  # the property's own description wins over the model's
        return _inline(merged, definitions, (*seen, name))
    return {key: _inline(value, definitions, seen) for key, value in node.items() if key != "$defs"}


def _collapse_optional(node: Any) -> Any:
    if isinstance(node, list):
        return [_collapse_optional(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _collapse_optional(value) for key, value in node.items()}
    options = node.get("anyOf")
    if not (isinstance(options, list) and {"type": "null"} in options and node.get("default", ...) is None):
        return node
    kept = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in node.items() if key not in ("anyOf", "default")}
    return {**kept[0], **rest} if len(kept) == 1 else {"anyOf": kept, **rest}
