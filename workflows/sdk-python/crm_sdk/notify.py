"""Chat messages to CRM users (capability `notify`)."""

from wit_world.imports import notify as _n

from .errors import host_call


def send(user_id: int, text: str) -> None:
    host_call(_n.send, user_id, text)
