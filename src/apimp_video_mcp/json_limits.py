"""Measures of a JSON value a caller sends, so that what we forward and store stays bounded.

A schema states sizes of strings and counts of keys, but not how deep a value nests, how many
bytes it takes, or that a number is finite (NaN and infinities have no JSON form: they would go
out as `null` or as invalid JSON). These few functions answer that for any decoded JSON value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def depth(value: Any) -> int:
    """How many objects and arrays are nested in `value` (a scalar is 0), without recursion, so a
    hostile value thousands of levels deep is measured rather than crashing the measurer."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def non_finite_path(value: Any, path: str) -> str | None:
    """The path of the first NaN or infinity inside `value` (e.g. `weights[1]`), or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where
        if isinstance(item, Mapping):
            stack.extend((child, f"{where}.{key}") for key, child in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def encoded_bytes(value: Any) -> int:
    """The size of `value` as compact UTF-8 JSON, as it is sent and stored."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
