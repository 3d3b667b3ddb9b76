"""Step errors, and host errors turned into them."""

from componentize_py_types import Err
from wit_world.imports import types as _types


class StepError(Exception):
    """Why a step failed: its `kind` ("retryable": the scheduler tries again with backoff, or
    "permanent"), a short machine-readable `code` and a `message` for people."""

    def __init__(self, kind: str, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message

    @property
    def is_retryable(self) -> bool:
        return self.kind == "retryable"

    @staticmethod
    def permanent(code: str, message: str) -> "StepError":
        """Retrying cannot help: bad input, a missing record, a broken contract."""
        return StepError("permanent", code, message)

    @staticmethod
    def retryable(code: str, message: str) -> "StepError":
        """A transient failure: the scheduler tries the step again with backoff."""
        return StepError("retryable", code, message)

    @staticmethod
    def invalid_input(message: str) -> "StepError":
        """The step's input or config does not have the expected shape."""
        return StepError("permanent", "invalid_input", message)

    def to_wit(self) -> "_types.StepError":
        kind = _types.ErrorKind.RETRYABLE if self.is_retryable else _types.ErrorKind.PERMANENT
        return _types.StepError(kind=kind, code=self.code, message=self.message)


_CODES = {
    _types.HostError_NotFound: ("not_found", "permanent"),
    _types.HostError_Invalid: ("invalid", "permanent"),
    _types.HostError_Conflict: ("conflict", "permanent"),
    _types.HostError_Unavailable: ("unavailable", "retryable"),
}


def host_call(f, *args):
    """Calls a host import; a host error becomes the StepError the Rust SDK's `?` makes of it."""
    try:
        return f(*args)
    except Err as e:
        code, kind = _CODES.get(type(e.value), ("unavailable", "retryable"))
        raise StepError(kind, code, str(getattr(e.value, "value", e.value))) from None
