"""A small key-value store private to the workflow, kept across runs (capability `state`).
Values are JSON documents."""

import json
from typing import Any

from wit_world.imports import state as _s

from .errors import host_call


def get(key: str) -> Any:
    """The value under `key`, or None."""
    text = host_call(_s.get, key)
    return None if text is None else json.loads(text)


def set(key: str, value: Any) -> None:
    host_call(_s.set, key, json.dumps(value, separators=(",", ":")))


def delete(key: str) -> None:
    host_call(_s.delete, key)
