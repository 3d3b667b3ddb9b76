"""Lead scoring, in Python: the same step as `workflows/lead-score` (Rust), on the Python
SDK. Same input, config, capabilities and output; `engine/cli/tests/languages.rs` runs the
three versions on the same fixtures and checks they agree."""

import crm_sdk
from crm_sdk import DAY_MS, Input, Output, StepError, records
from crm_sdk.records import DealStatus, RecordKind

DEFAULTS = {"contact_id": None, "recent_days": 30, "hot_at": 70, "warm_at": 40, "branches": None, "write_back": False}


def config_of(input: Input) -> dict:
    given = input.config_dict()
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise StepError.invalid_input(f"step config: unknown field `{unknown[0]}`")
    return {**DEFAULTS, **{k: v for k, v in given.items() if v is not None}}


def run(input: Input) -> Output:
    config = config_of(input)
    contact_id = config["contact_id"]
    if contact_id is None:
        contact_id = input.run_input_field("contact_id")
    if not isinstance(contact_id, int):
        raise StepError.invalid_input("run input field `contact_id`: expected an integer")
    if config["warm_at"] > config["hot_at"]:
        raise StepError.invalid_input("`warm_at` must not be above `hot_at`")
    contact = records.get_contact(contact_id)
    now = crm_sdk.now_ms()
    recent_days = config["recent_days"]
    recent_since = now - max(recent_days, 0) * DAY_MS
    reasons = []

    def add(points: int, why: str) -> None:
        if points != 0:
            reasons.append({"points": points, "why": why})

    # Reachability: a lead nobody can contact is worth little, whatever else is true.
    if contact.email is not None:
        add(10, "has an email address")
    if contact.phone is not None:
        add(5, "has a phone number")
    if contact.company_id is not None:
        add(10, "works at a known company")

    deals = records.find_deals(contact_id=contact_id, limit=200)
    open_deals = [d for d in deals if d.status == DealStatus.OPEN]
    won = sum(1 for d in deals if d.status == DealStatus.WON)
    lost = sum(1 for d in deals if d.status == DealStatus.LOST)
    add(15 * min(len(open_deals), 3), f"{len(open_deals)} open deal(s)")
    # One point per 1,000.00 of open pipeline, capped so one huge deal cannot make a lead
    # hot on its own.
    open_value = sum(d.amount_minor for d in open_deals)
    currency = open_deals[0].currency if open_deals else "USD"
    add(min(open_value // 100_000, 25), f"open pipeline worth {crm_sdk.format_money(open_value, currency)}")
    add(20 * min(won, 2), f"{won} won deal(s): an existing customer")
    add(-10 * min(lost, 3), f"{lost} lost deal(s)")
    moving = sum(1 for d in open_deals if d.stage_changed_at >= recent_since)
    add(5 * min(moving, 3), f"{moving} deal(s) moved stage in the last {recent_days} days")

    activity = records.record_activity(RecordKind.CONTACT, contact_id, 200)
    recent_activity = sum(1 for a in activity if a.at >= recent_since)
    add(min(2 * recent_activity, 20), f"{recent_activity} change(s) in the last {recent_days} days")

    notes = records.find_notes(contact_id=contact_id, limit=200)
    recent_notes = sum(1 for n in notes if n.created_at >= recent_since)
    add(min(3 * recent_notes, 15), f"{recent_notes} recent note(s)")

    tasks = records.find_tasks(contact_id=contact_id, done=False, limit=200)
    overdue = sum(1 for t in tasks if t.due_at is not None and t.due_at < now)
    add(-5 * min(overdue, 4), f"{overdue} overdue task(s)")

    total = max(0, min(100, sum(r["points"] for r in reasons)))
    grade = "hot" if total >= config["hot_at"] else "warm" if total >= config["warm_at"] else "cold"
    crm_sdk.info("lead scored", {"contact_id": contact_id, "score": total, "grade": grade})

    if config["write_back"]:
        records.update_contact(contact_id, custom={"lead_score": total, "lead_grade": grade})

    output = Output.json({"contact_id": contact_id, "name": contact.name, "score": total, "grade": grade,
                          "reasons": reasons})
    branches = config["branches"]
    if branches is None:
        return output
    return output.with_next(branches.get(grade, []))


WitWorld = crm_sdk.export(run)
