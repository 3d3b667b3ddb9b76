"""Outbound HTTP(S), only to destinations granted as `http:HOST` (capability)."""

from typing import Dict, Optional, Union

from wit_world.imports import http as _h
from wit_world.imports.http import Response  # noqa: F401  (re-exported)

from .errors import host_call


def send(method: str, url: str, headers: Optional[Dict[str, str]] = None,
         body: Optional[Union[bytes, str]] = None, timeout_ms: Optional[int] = None) -> "Response":
    """One request; redirects are returned, not followed."""
    if isinstance(body, str):
        body = body.encode()
    request = _h.Request(method=method, url=url, headers=list((headers or {}).items()), body=body,
                         timeout_ms=timeout_ms)
    return host_call(_h.send, request)
