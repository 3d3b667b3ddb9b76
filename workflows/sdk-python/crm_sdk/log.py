"""Structured logging into the step's log (capability `log`)."""

import json
from typing import Any, Optional

from wit_world.imports import log as _log


def _emit(level: "_log.Level", message: str, fields: Optional[Any]) -> None:
    _log.write(level, message, "" if fields is None else json.dumps(fields, separators=(",", ":")))


def debug(message: str, fields: Optional[Any] = None) -> None:
    _emit(_log.Level.DEBUG, message, fields)


def info(message: str, fields: Optional[Any] = None) -> None:
    _emit(_log.Level.INFO, message, fields)


def warn(message: str, fields: Optional[Any] = None) -> None:
    _emit(_log.Level.WARN, message, fields)


def error(message: str, fields: Optional[Any] = None) -> None:
    _emit(_log.Level.ERROR, message, fields)
