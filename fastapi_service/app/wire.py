"""Bounds every wire schema shares: int64 integers, NUL-free text, shallow JSON.

PostgreSQL cannot store U+0000 in `text`/`jsonb` and asyncpg cannot send an integer outside int64:
both are refused here, at the schema, as a 4xx, instead of failing in the database as a 500.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator

INT64_MAX = 2**63 - 1


class BadJson(ValueError):
    """The body is not JSON the engine accepts; the message is a sentence for the client."""


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


# A string that PostgreSQL can store.
Text = Annotated[str, AfterValidator(refuse_nul)]


def check_tree(value: Any, max_depth: int) -> None:
    """Refuse NUL in any string or key, and nesting deeper than `max_depth`; iterative, no recursion."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "body")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BadJson(f"{where}: must not contain the NUL character (U+0000)")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            raise BadJson(f"{where}: JSON nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise BadJson(f"{where}: a key contains the NUL character (U+0000)")
                stack.append((child, depth + 1, f"{where}.{key}" if where != "body" else key))
        else:
            stack.extend((child, depth + 1, f"{where}[{i}]") for i, child in enumerate(item))


def loads(body: bytes, max_depth: int) -> Any:
    """Parse JSON, then check it with `check_tree`; every failure is a BadJson."""
    try:
        value = json.loads(body)
    except RecursionError as exc:  # nesting so deep the parser itself gives up
        raise BadJson(f"body: JSON nested deeper than {max_depth} levels") from exc
    except ValueError as exc:
        raise BadJson("body is not valid JSON") from exc
    check_tree(value, max_depth)
    return value
