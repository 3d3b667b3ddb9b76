# The bot's texts in English, the language for everyone whose settings and Telegram app name
# no language the bot speaks. Keys are the same in every language (a test checks).

## Commands: /help and the Telegram command menu

help-commands = Commands:
help-workflows = Workflows:
help-dialogue-hint = In a dialogue, send - to skip an optional field and /cancel to stop.
help-import-hint = To import, send a CSV file with the caption contacts, companies, deals or tasks: you see a preview first.
cmd-help = List the commands
cmd-find = Search contacts, companies and deals
cmd-contacts = List or search contacts
cmd-companies = List or search companies
cmd-deals = List or search deals
cmd-addcontact = Add a contact, field by field
cmd-addcompany = Add a company, field by field
cmd-editcontact = Change a contact
cmd-editcompany = Change a company
cmd-adddeal = Add a deal, field by field
cmd-editdeal = Change a deal
cmd-pipeline = Deals by stage; move them with buttons
cmd-tasks = My open tasks
cmd-today = My tasks due today
cmd-addtask = Add a task for me
cmd-note = Add a note to a record
cmd-delete = Delete a record, after you confirm
cmd-export = Download records as a CSV file
cmd-run = Run a workflow
cmd-runs = Recent workflow runs and their status
cmd-approvals = Approvals waiting for my decision, with their buttons
cmd-schedules = Scheduled workflows and when they run next
cmd-settings = My time zone, task reminders and language
cmd-invite = Create a one-time invite (admins)
cmd-web = A one-time link that signs you in to the web app
cmd-cancel = Stop the current dialogue
cmd-start = Start, or redeem an invite code
workflow-run = Run { $workflow }

## Messages the bot does not act on

text-only = I understand text messages only (and CSV files to import). Send /help for the commands.
malformed-command = That does not look like a command. Send /help for the list.
plain-text-hint = Send /help for the commands, or /find TEXT to search the CRM.
unknown-command = Unknown command /{ $command }. Send /help for the list.
edits-ignored = I saw you edited a message. Edits are not acted on — please send the corrected message again.
edit-usage = Usage: /{ $command } ID — the number shown on the record, e.g. /{ $command } 42
button-too-old = This button is too old; please run the command again.
button-unknown-user = You are not registered with this CRM.
button-expired = This button has expired; please run the command again.
edit-only-records = Only contacts, companies and deals can be edited here.

## Errors from the engine

error-forbidden = ⛔ Your role does not allow that. Ask an admin if you need it.
error-not-found = That record no longer exists (or you cannot see it).
error-unauthorized = The bot's engine token was refused; tell your admin.
error-internal = The CRM hit an internal error; please try again later.
error-unreachable = The CRM is not reachable right now; please try again in a moment.
error-decode = The CRM answered something the bot does not understand; tell your admin.

## Who may talk to the bot

refusal-unknown-user = Sorry, this is a private CRM bot and I don't know you yet. If you work with this team, ask an admin for an invite code and send /start CODE.
refusal-group = I only work in private chats: what I show about the CRM is for the person who asked. Open a chat with me and send your command there.
refusal-group-button = This chat is not served; use a private chat.
start-hello =
    Hello, { $name }! You are signed in as a { $role }.

    { $help }
start-welcome =
    Welcome, { $name }! Your invite is redeemed; you are a { $role } in this CRM.

    { $help }
invite-code-malformed = That invite code is not valid. Check it and send /start CODE again.
invite-code-invalid = This invite code is invalid, expired or already used. Ask your admin for a new one.
invite-private-only = Invite codes are given only in a private chat with me: everyone in this chat would see the code.
invite-usage = Usage: /invite admin|manager|viewer — e.g. /invite manager
invite-admins-only = ⛔ Only admins can invite people.
invite-expires = It expires { $when }.
invite-created =
    Invite for a { $role } created. The new user sends this to the bot:
    /start { $code }
    The code works once.{ $expiry }
invite-created-link =
    Invite for a { $role } created. The new user opens this link:
    { $link }
    or sends this to the bot:
    /start { $code }
    The code works once.{ $expiry }
role-admin = admin
role-manager = manager
role-viewer = viewer
role-read-only = ⛔ Your role ({ $role }) can read the CRM but not change it.

## /settings

settings-usage =
    Change them with:
    /settings zone Europe/Berlin — your IANA time zone (due times are typed and shown in it)
    /settings remind 15 — minutes before a task is due that its reminder comes (0: at the due time)
    /settings language ru — the language I write in: en, ru, or auto (your Telegram app's)
settings-remind-invalid = Type the minutes as a whole number from 0 to { $max } (a week), e.g. /settings remind 15
settings-language-invalid = I write in en (English) and ru (Russian): e.g. /settings language ru, or /settings language auto to follow your Telegram app.
settings-saved = ✅ Saved.
settings-summary =
    ⚙️ Your settings
    🕒 Time zone: { $zone } (it is { $now } there now)
    ⏰ Task reminders: { $remind }
    🌐 Language: { $language }
settings-remind-at-due = at the due time
settings-remind-before = { $minutes } min before the due time
settings-language-set = { $language }
settings-language-auto = { $language } (your Telegram app's)
language-en = English
language-ru = Russian

## Records: cards, lists, search

ref-contact = contact #{ $id }
ref-company = company #{ $id }
ref-deal = deal #{ $id }
ref-task = task #{ $id }
ref-stage = stage #{ $id }
card-people = People: { $names }
card-expected-close = 📅 expected close { $date }
deal-status-open = open
deal-status-won = won
deal-status-lost = lost
task-line-due = { $mark } { $title } — due { $due }
button-note = 📝 Note
button-edit = ✏️ Edit
button-done = ✅ Done
button-previous = ◀ Previous
button-next = Next ▶
find-usage = Usage: /find TEXT — e.g. /find Ann, /find acme. Misspellings are fine.
find-too-long = That search text is too long; use at most { $max } characters.
find-nothing = Nothing found for “{ $text }”.
find-found = Found for “{ $text }”:
list-empty =
    There are no { $kind ->
        [contact] contacts
        [company] companies
        [task] tasks
       *[deal] deals
    } yet.
list-no-more =
    There are no more { $kind ->
        [contact] contacts
        [company] companies
        [task] tasks
       *[deal] deals
    }.
list-expired = This list has expired; please send the command again.
list-title =
    Newest { $kind ->
        [contact] contacts
        [company] companies
        [task] tasks
       *[deal] deals
    } (tap to open):
list-title-page =
    Newest { $kind ->
        [contact] contacts
        [company] companies
        [task] tasks
       *[deal] deals
    }, page { $page } (tap to open):
record-gone =
    That { $kind ->
        [contact] contact
        [company] company
        [task] task
       *[deal] deal
    } no longer exists.
note-usage = Usage: /note contact|company|deal|task ID [TEXT] — e.g. /note deal 12 Called, they want a demo. Or open a record and tap 📝 Note.
note-saved = 📝 Note #{ $note } saved on { $record }.

## Dialogues that add or change a record

field-name = Name
field-email = Email
field-phone = Phone
field-company = Company
field-domain = Domain
field-title = Title
field-amount = Amount
field-contact = Contact
field-stage = Stage
field-expected-close = Expected close
field-due = Due
field-body = Text
field-custom = Custom field
field-task = task
field-search-text = search text
form-adding-contact = adding a contact
form-adding-company = adding a company
form-editing-contact = editing contact #{ $id }
form-editing-company = editing company #{ $id }
form-adding-deal = adding a deal
form-editing-deal = editing deal #{ $id }
form-adding-task = adding a task
form-note-on = the note on { $record }
dialogue-left = (Left { $dialogue } — nothing was saved.)
dialogue-cancelled = Cancelled { $dialogue }. Nothing was saved.
nothing-to-cancel = There is nothing to cancel.
ask-company-name = What is the company called?
ask-contact-name = What is the contact's name?
ask-domain = Its website's domain? e.g. acme.com
ask-email = Email address?
ask-phone = Phone number?
ask-company = Which company? Type part of its name.
ask-task-title = What is the task?
ask-deal-title = What is the deal called?
ask-amount = Amount? e.g. 1500, 1 500.50 or 1500 EUR.
ask-contact = Which contact is it with? Type part of the name.
ask-stage = Which stage?
ask-expected-close = Expected close date? e.g. 2026-12-01, tomorrow or +30.
ask-due = When is it due? e.g. today, tomorrow or 2026-12-01 09:30 (your time; /settings shows your zone).
ask-note = Type the note.
ask-custom = Which value?
ask-custom-text = { $label }?
ask-custom-number = { $label }? A number, e.g. 42 or 3.5.
ask-custom-money = { $label }? An amount, e.g. 1500, 1 500.50 or 1500 EUR.
ask-custom-date = { $label }? A date, e.g. 2026-12-01, tomorrow or +30.
ask-custom-pick = { $label }? Pick one.
yes = Yes
no = No
form-skip-hint = Send - to skip.
form-cancel-hint = (/cancel stops without saving.)
form-edit-which-field = Editing “{ $title }”. Which field? (/cancel to stop)
form-pick-field = Please pick a field with the buttons above, or /cancel.
form-pick-stage = Please pick a stage with the buttons above, or /cancel.
form-custom-required = { $label } is required: type a value, or /cancel.
form-custom-number = { $label } must be a number, e.g. 42 or 3.5.
form-custom-yes-no = { $label }: answer yes or no.
form-custom-choice = { $label } must be one of { $choices }.
form-custom-text = { $label } is at most { $max } characters.
form-custom-money = { $label }: { $error }
form-lookup-none = No { $what } matches “{ $text }”. Type another name, or send - to skip.
form-lookup-several = Several { $what } names match. Which one? (Or type another name, or - to skip.)
form-stale-button = This button belongs to a dialogue that has ended.
form-refused = The CRM refused the { $field }: { $message }
form-conflict-email = { $error } Try another email.
form-not-saved =
    { $error }
    Nothing was saved.
contact-added = ✅ Contact added.
contact-updated = ✅ Contact updated.
company-added = ✅ Company added.
company-updated = ✅ Company updated.
deal-added = ✅ Deal added.
deal-updated = ✅ Deal updated.
task-added = ✅ Task added: { $task }
task-needs-fields = Adding the task “{ $title }”; it needs its required fields first.
invalid-name-empty = The { $what } cannot be empty. Please type it.
invalid-name-long = That { $what } is { $len } characters long; the most is { $max }. Please shorten it.
invalid-name-nul = That { $what } contains a character the CRM cannot store (NUL). Please type it again.
invalid-body-empty = The text cannot be empty.
invalid-body-long = That text is { $len } characters long; the most is { $max }.
invalid-body-nul = That text contains a character the CRM cannot store (NUL).
invalid-email-long = That email address is { $len } characters long; the most is { $max }. Send - to skip.
invalid-email = “{ $text }” is not an email address. Try e.g. ann@example.com, or send - to skip.
invalid-phone = That is not a phone number. Use digits, spaces and + - ( ) . (at most { $max } characters), e.g. +1 555 010 2030, or send - to skip.
invalid-domain = That is not a domain. Type it like acme.com, or send - to skip.
invalid-date = Type a date like 2026-12-01, today, tomorrow or +3 (days from now), or send - to skip.
invalid-money = Type an amount like 1500, 1 500.50 or 1500 EUR.
invalid-money-currency = “{ $code }” is not an ISO 4217 currency code; type one after the amount, e.g. 1500 EUR.
invalid-money-default-currency = The default currency “{ $code }” is not an ISO 4217 code; type one, e.g. 1500 EUR.
invalid-money-negative = The amount cannot be negative.
invalid-money-whole = { $code } has no smaller unit: type a whole amount.
invalid-money-decimals = { $code } has at most { $decimals } decimals.
invalid-money-too-large = That amount is too large.
# typed for a date, besides the English words
word-today = today
word-tomorrow = tomorrow

## Tasks and the pipeline

tasks-none-today = Nothing due today. 🎉
tasks-none = You have no open tasks. 🎉 Add one with /addtask.
tasks-today-title = Due today (and overdue):
tasks-title = Your open tasks:
button-task-done = ✅ Done: { $title }
task-done = Done: { $title }
task-gone = That task no longer exists.
pipeline-unknown = No pipeline called “{ $name }”. Pipelines: { $pipelines }
pipeline-title = 📊 { $name } — { $count } open deals
pipeline-empty = No open deals yet — add one with /adddeal.
pipeline-hint = Tap a deal to open it and move it to another stage.
stage-empty = No deals in this stage any more.
stage-deals = Deals in { $stage } ({ $count }):
deal-gone = That deal no longer exists.
deal-moved-to = Moved to { $stage }
deal-moved = Moved.

## Workflows, runs, approvals, schedules

args-unreadable = { $error }. Usage: { $usage }
args-quote-open = A quote is not closed
args-missing = Missing { $name }. Usage: { $usage }
args-bad = { $name } must be { $what }, not “{ $value }”. Usage: { $usage }
args-integer = a whole number
args-number = a number
args-yes-no = yes or no
args-too-many = Too many arguments ({ $extra }). Usage: { $usage }
run-none-deployed = none deployed yet
run-usage = Usage: /run WORKFLOW [ARGS]. Workflows: { $workflows }
run-running = ⏳ Running { $workflow }…
run-no-such-workflow = there is no workflow named “{ $workflow }”. See /help.
run-not-started = ❌ Could not start { $workflow }: { $why }
run-retrying = Retrying.
runs-none = No workflow runs yet. Start one with /run WORKFLOW.
runs-title = Recent runs:
runs-waits = { $step } waits { $what }
run-status = { $status }
approvals-none = Nothing waits for your decision.
approvals-waiting-here =
    { $count ->
        [one] One approval is
       *[other] { $count } approvals are
    } waiting for your decision; each follows with its buttons:
approvals-waiting-private =
    { $count ->
        [one] One approval is
       *[other] { $count } approvals are
    } waiting for your decision; each comes to our private chat with its buttons:
approval-approved = ✅ Approved.
approval-rejected = ❌ Rejected.
approval-not-yours = ⛔ Not yours to decide: { $reason }
approval-decided-already = This was decided already; nothing changed.
approval-gone = This approval no longer exists.
approval-ask-title = 🗳 Approval needed ({ $workflow })
approval-ask-deadline =
    Decide by { $deadline }; without a decision it is { $on_timeout ->
        [approved] approved
       *[other] rejected
    }.
approval-button-approve = ✅ Approve
approval-button-reject = ❌ Reject
approval-outcome-approved = ✅ Approved by { $by } at { $at }
approval-outcome-rejected = ❌ Rejected by { $by } at { $at }
approval-outcome-timed-out =
    ⌛ Nobody decided in time: { $decision ->
        [approved] approved
       *[other] rejected
    } at { $at }
approval-outcome-run-ended = 🚫 No longer needed: the run ended at { $at } before a decision
run-succeeded = ✅ { $workflow } finished.
run-failed = ❌ { $workflow } failed: { $reason }
run-failed-at-step = ❌ { $workflow } failed at step { $step }: { $reason }
run-failed-no-reason = no reason given
run-cancelled = 🚫 { $workflow } was cancelled.
run-ended-as = { $workflow } is { $status }.
run-retry-button = 🔁 Retry from the failed step
message-buttons-gone = This message's buttons no longer work.
press-task-done = ✅ Done: { $title }
press-run-started = → { $label }
press-already-answered = This was already answered.
schedules-none = No scheduled workflows. A workflow with a cron trigger shows up here once deployed.
schedules-title = ⏰ Scheduled workflows (times in your zone, { $zone }):
schedules-next = next: { $at } ({ $until })
schedules-then = then: { $at }
schedules-never = next: never (no future tick)
until-now = due now
until-seconds = in { $s }s
until-minutes = in { $m }m
until-hours = in { $h }h { $m }m
until-days = in { $d }d { $h }h

## /web

web-link =
    🔐 Your sign-in link for the CRM's web app. It works once, for { $minutes } minutes; don't forward it.
    { $url }
web-open-browser = Open in the browser
web-open-telegram = Open in Telegram

## CSV files

import-which-kind = Which records does { $file } hold? Send it again with the caption contacts, companies, deals or tasks.
import-too-big = { $file } is over { $mib } MiB: split it and send the parts, or use `crm import`.
import-download-failed = I could not download that file from Telegram; please send it again.
import-nothing = There is nothing to import.
button-import = Import
button-cancel = Cancel
import-summary-dry =
    { $rows } { $rows ->
        [one] row
       *[other] rows
    }: { $created } would be created, { $updated } would be updated, { $skipped } skipped as duplicates, { $rejected } rejected (dry run: nothing written)
import-summary =
    { $rows } { $rows ->
        [one] row
       *[other] rows
    }: { $created } created, { $updated } updated, { $skipped } skipped as duplicates, { $rejected } rejected
import-preview = { $file } as { $kind }: { $summary }
import-columns-read = Columns read: { $columns }
import-columns-ignored = Columns ignored: { $columns }
import-rejected = Rejected:
import-line = line { $line }: { $reason }
import-more = … and { $count } more
import-skipped = Skipped as duplicates: lines { $lines }
import-preview-expired = This preview has expired; send the file again.
import-importing = Importing { $file }…
import-done = Imported { $file } as { $kind }: { $summary }
import-done-notice = Imported
import-cancelled = Import of { $file } cancelled: nothing was imported.
import-cancelled-notice = Cancelled
export-usage = Usage: /export contacts|companies|deals|tasks — the records as a CSV file.
export-caption = { $kind }: { $records } records. Send this file back to import it again.
export-failed = Telegram did not take the file; please try /export again.

## Cards and deleting

card-deals = 💼 Deals:
card-people-title = 👤 People:
card-open-tasks = ⬜ Open tasks:
card-last-notes = 📝 Last notes:
card-recent-activity = 🕘 Recent activity:
card-task-due = { $title } — due { $due }
card-about = About: { $record }
ref-user = user #{ $id }
actor-workflow = a workflow
actor-system = the system
activity-moved-to = moved to { $stage }
activity-changed = changed { $fields }
activity-action = { $action }
button-delete = 🗑 Delete
button-keep = ✖️ Cancel
delete-usage = Usage: /delete contact|company|deal|task ID — e.g. /delete deal 12. You are asked to confirm first; or open a record and tap 🗑 Delete.
delete-role-refused = ⛔ Your role ({ $role }) cannot delete records: only managers and admins can. Ask one of them if it must go.
delete-no-such = There is no { $record } (it may be deleted already).
delete-ask = 🗑 Delete { $record } “{ $name }”?
delete-only-asker-answers = Only { $name } can answer this.
delete-not-the-asker = ⛔ Only the person who asked to delete this can answer.
delete-kept = Kept { $record }: nothing was deleted.
delete-cancelled = Cancelled.
delete-done = 🗑 Deleted { $record } “{ $name }”.
delete-done-notice = Deleted { $record }.
delete-already = The { $record } was already deleted.
delete-already-notice =
    That { $kind ->
        [contact] contact
        [company] company
        [task] task
       *[deal] deal
    } was already deleted.
