"""Secrets by name (capability `secret:NAME` for each name)."""

from wit_world.imports import secrets as _s

from .errors import host_call


def get(name: str) -> str:
    return host_call(_s.get, name)
