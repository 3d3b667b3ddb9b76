"""Write a `crm` workflow step as one plain function (Python; the same shape as the Rust SDK).

    import crm_sdk
    from crm_sdk import Input, Output, records

    def run(input: Input) -> Output:
        contact = records.get_contact(input.run_input_field("contact_id"))  # needs records:read
        crm_sdk.info("looked up", {"id": contact.id})                        # needs log
        return Output.json({"name": contact.name})

    WitWorld = crm_sdk.export(run)

Host calls that fail raise `StepError` (a transient failure is retryable, everything else
permanent), so a step lets them propagate unless it has something better to do. Calling a
host interface the step was not granted ends the step with `capability_denied`: there is
nothing to handle. Any other exception ends the step with a permanent `exception` error that
names it; its traceback goes to the step's log.

The bindings underneath (`wit_world`) are generated from `wit/step.wit` by componentize-py
when the component is built.
"""

import json
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import types as _types

from . import http, log, notify, records, secrets, state
from .errors import StepError
from .log import debug, error, info, warn
from .money import format_money

__all__ = [
    "DAY_MS", "Input", "Output", "StepError", "debug", "error", "export", "format_money", "http", "info",
    "log", "notify", "now_ms", "records", "secrets", "state", "warn",
]

#: Milliseconds in one day, for day-based settings.
DAY_MS = 86_400_000


def now_ms() -> int:
    """Milliseconds since the Unix epoch, from the host's clock (the unit of record times)."""
    return int(time.time() * 1000)


class Input:
    """The step's input: the run input, the outputs of the steps it needs, its config (all
    parsed JSON) and its context (workflow, run_id, step, attempt, acting_user)."""

    def __init__(self, context: "_types.StepContext", run_input: Any, deps: Dict[str, Any], config: Any):
        self.context = context
        self.run_input = run_input
        self.deps = deps
        self.config = config

    def config_dict(self) -> Dict[str, Any]:
        """The config as a dict; a missing config reads as `{}`."""
        if self.config is None:
            return {}
        if not isinstance(self.config, dict):
            raise StepError.invalid_input("step config: expected an object")
        return self.config

    def run_input_field(self, name: str) -> Any:
        """One field of the run input, which must be present."""
        if not isinstance(self.run_input, dict) or name not in self.run_input:
            raise StepError.invalid_input(f"the run input has no `{name}` field")
        return self.run_input[name]

    def dep(self, step: str) -> Any:
        """The output of a step this one needs, which must be present."""
        if step not in self.deps:
            raise StepError.invalid_input(f"no output of step `{step}`: is it listed in `needs`?")
        return self.deps[step]

    def setting(self, name: str) -> Any:
        """A field looked up first in the config, then in the run input (None when neither has it)."""
        if isinstance(self.config, dict) and self.config.get(name) is not None:
            return self.config[name]
        if isinstance(self.run_input, dict):
            return self.run_input.get(name)
        return None


class Output:
    """What a step returns: a JSON value and, optionally, which successors run (branching)."""

    def __init__(self, value: Any, next: Optional[List[str]] = None):
        self.value = value
        self.next = next

    @staticmethod
    def json(value: Any) -> "Output":
        return Output(value)

    def with_next(self, steps: Iterable[str]) -> "Output":
        """Runs only these successor steps; an empty list ends this branch."""
        self.next = list(steps)
        return self


def _parse(text: str, what: str) -> Any:
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise StepError.invalid_input(f"{what} is not valid JSON: {e}")


def _run(raw: "_types.StepInput", f: Callable[[Input], Output]) -> "_types.StepOutput":
    try:
        deps = {name: _parse(text, f"output of step `{name}`") for name, text in raw.deps}
        step_input = Input(raw.context, _parse(raw.run_input, "the run input"), deps, _parse(raw.config, "the step config"))
        out = f(step_input)
        if not isinstance(out, Output):
            out = Output(out)
        try:
            text = json.dumps(out.value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise StepError.permanent("output_not_serializable", str(e))
        return _types.StepOutput(output=text, next=out.next)
    except StepError as e:
        raise Err(e.to_wit())
    except Exception as e:  # a bug in the step: say which, keep the traceback in the log
        traceback.print_exc(file=sys.stderr)
        raise Err(StepError.permanent("exception", f"{type(e).__name__}: {e}").to_wit())


def export(f: Callable[[Input], Output]) -> type:
    """Exports `f(Input) -> Output` as the component's `run`: `WitWorld = crm_sdk.export(run)`."""

    class WitWorld(wit_world.WitWorld):
        def run(self, input: "_types.StepInput") -> "_types.StepOutput":
            return _run(input, f)

    return WitWorld
