"""Chat messages to CRM users (capability `notify`), optionally with buttons under them:

    from crm_sdk import notify

    notify.send_with_buttons(user_id, "⏰ Reminder: Call Ann", [
        ("✅ Done", notify.complete_task(task.id)),
        ("⏰ Snooze 1 h", notify.start_run("task-reminder", {"task_id": task.id, "snooze_minutes": 60})),
    ])

A press acts as the person the message went to, with their role's rights, and a message is
answered by one press only."""

import json
from typing import Any, Dict, Iterable, Tuple, Union

from wit_world.imports import notify as _n
from wit_world.imports.notify import Action, Button  # noqa: F401  (re-exported for steps)

from .errors import host_call

#: The most buttons under one message.
MAX_BUTTONS = 8


def send(user_id: int, text: str) -> None:
    host_call(_n.send, user_id, text)


def complete_task(task_id: int) -> Action:
    """What a button does: marks task `task_id` done."""
    return _n.Action_CompleteTask(task_id)


def start_run(workflow: str, input: Dict[str, Any]) -> Action:
    """What a button does: starts a run of the deployed workflow `workflow` with `input` (a
    dict, sent as a JSON object of at most 4 KB)."""
    return _n.Action_StartRun(_n.RunRequest(workflow=workflow, input=json.dumps(input, separators=(",", ":"))))


def send_with_buttons(user_id: int, text: str, buttons: Iterable[Union[Tuple[str, Action], Button]]) -> None:
    """`send` with at most 8 buttons under the message, each a `(label, action)` pair (or a
    `Button`); labels are 1 to 40 characters. The host refuses the whole message, as
    `invalid`, when a button breaks a rule."""
    given = [b if isinstance(b, Button) else Button(label=b[0], action=b[1]) for b in buttons]
    host_call(_n.send_with_buttons, user_id, text, given)
