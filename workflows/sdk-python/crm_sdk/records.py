"""Typed CRM records (capability `records:read` for reads, `records:write` for writes).

The record, enum and filter types are the generated ones (`Contact`, `Deal`, `DealStatus`,
`RecordKind`, ...). Filters, patches and new records are given as keyword arguments, so a
step names only the fields it sets: `find_deals(contact_id=7, limit=50)`,
`update_contact(7, custom={"score": 80})`. In a patch a field left out stays as it is; a
field given as `None` is cleared. `custom` may be a dict (sent as JSON)."""

import dataclasses
import json
from typing import Any, Dict, List

from componentize_py_types import Some
from wit_world.imports import records as _r
from wit_world.imports.records import (  # noqa: F401  (re-exported for steps)
    Activity, Company, CompanyFilter, CompanyPatch, Contact, ContactFilter, ContactPatch, Deal, DealFilter,
    DealPatch, DealStatus, NewCompany, NewContact, NewDeal, NewNote, NewTask, Note, NoteFilter, NotePatch,
    RecordKind, Task, TaskFilter, TaskPatch, User,
)

from .errors import host_call

_NEW_DEFAULTS = {"tags": [], "custom": "{}"}


def _custom(value: Any) -> Any:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else value


def _build(cls: type, given: Dict[str, Any], defaults: Dict[str, Any], patch: bool = False) -> Any:
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    unknown = sorted(set(given) - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {unknown[0]!r}; its fields: {', '.join(sorted(names))}")
    values = {}
    for f in fields:
        if f.name not in given:
            values[f.name] = defaults.get(f.name)
            continue
        value = given[f.name]
        if f.name == "custom":
            value = _custom(value)
        # `option<option<T>>`: given means "set", and None means "clear".
        if patch and "Some[" in str(f.type):
            value = Some(value)
        values[f.name] = value
    return cls(**values)


def get_contact(id: int) -> Contact:
    return host_call(_r.get_contact, id)


def find_contacts(**filter: Any) -> List[Contact]:
    return host_call(_r.find_contacts, _build(ContactFilter, filter, {}))


def create_contact(**fields: Any) -> Contact:
    return host_call(_r.create_contact, _build(NewContact, fields, _NEW_DEFAULTS))


def update_contact(id: int, **patch: Any) -> Contact:
    return host_call(_r.update_contact, id, _build(ContactPatch, patch, {}, patch=True))


def get_company(id: int) -> Company:
    return host_call(_r.get_company, id)


def find_companies(**filter: Any) -> List[Company]:
    return host_call(_r.find_companies, _build(CompanyFilter, filter, {}))


def create_company(**fields: Any) -> Company:
    return host_call(_r.create_company, _build(NewCompany, fields, _NEW_DEFAULTS))


def update_company(id: int, **patch: Any) -> Company:
    return host_call(_r.update_company, id, _build(CompanyPatch, patch, {}, patch=True))


def get_deal(id: int) -> Deal:
    return host_call(_r.get_deal, id)


def find_deals(**filter: Any) -> List[Deal]:
    return host_call(_r.find_deals, _build(DealFilter, filter, {}))


def create_deal(**fields: Any) -> Deal:
    return host_call(_r.create_deal, _build(NewDeal, fields, _NEW_DEFAULTS))


def update_deal(id: int, **patch: Any) -> Deal:
    return host_call(_r.update_deal, id, _build(DealPatch, patch, {}, patch=True))


def get_task(id: int) -> Task:
    return host_call(_r.get_task, id)


def find_tasks(**filter: Any) -> List[Task]:
    return host_call(_r.find_tasks, _build(TaskFilter, filter, {}))


def create_task(**fields: Any) -> Task:
    return host_call(_r.create_task, _build(NewTask, fields, {}))


def ensure_task(key: str, **fields: Any) -> Task:
    """The workflow's open task with this key, created from `fields` when there is none."""
    return host_call(_r.ensure_task, key, _build(NewTask, fields, {}))


def update_task(id: int, **patch: Any) -> Task:
    return host_call(_r.update_task, id, _build(TaskPatch, patch, {}, patch=True))


def get_note(id: int) -> Note:
    return host_call(_r.get_note, id)


def find_notes(**filter: Any) -> List[Note]:
    return host_call(_r.find_notes, _build(NoteFilter, filter, {}))


def create_note(**fields: Any) -> Note:
    return host_call(_r.create_note, _build(NewNote, fields, {}))


def update_note(id: int, **patch: Any) -> Note:
    return host_call(_r.update_note, id, _build(NotePatch, patch, {}, patch=True))


def record_activity(kind: RecordKind, id: int, limit: int) -> List[Activity]:
    """The newest changes to one record, newest first."""
    return host_call(_r.record_activity, kind, id, limit)


def get_user(id: int) -> User:
    """A CRM user as a step may see them: `name`, `time_zone` (IANA, e.g. "Europe/Berlin") and
    `remind_before_minutes` (how long before a task is due they want its reminder). An id
    that names no user raises `not_found`."""
    return host_call(_r.get_user, id)


def custom_of(record: Any) -> Dict[str, Any]:
    """A record's custom fields as a dict."""
    return json.loads(record.custom or "{}")
