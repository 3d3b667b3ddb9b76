"""The `greet` step of {{name}}: one function from input to output (`crm_sdk` is the
Python SDK, vendored in `.crm/sdk-python` by `crm`)."""

import crm_sdk
from crm_sdk import Input, Output, records


def run(input: Input) -> Output:
    name = input.setting("name") or (input.setting("record") or {}).get("name") or "there"
    contacts = records.find_contacts(limit=200)  # needs records:read
    crm_sdk.info("greeting", {"name": name, "contacts": len(contacts)})  # needs log
    return Output.json({"text": f"Hello, {name}! The CRM has {len(contacts)} contact(s)."})


WitWorld = crm_sdk.export(run)
