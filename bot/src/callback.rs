//! Inline button payloads. Telegram caps `callback_data` at 64 bytes, so every button
//! carries a compact code (`mv:12:4`) instead of JSON. Parsing is strict: a payload from
//! an older bot version or a forged one parses to `None` and the press is answered as
//! stale, never acted upon.

use crm_concepts::records::{Id, RecordKind};

/// Telegram's limit on `callback_data`.
pub const MAX_CALLBACK_DATA: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    /// show the card of a record
    Open(RecordKind, Id),
    /// show the stages a deal can move to
    MoveMenu(Id),
    /// move deal to stage
    Move { deal: Id, stage: Id },
    /// list the deals in a stage
    Stage(Id),
    /// mark a task done
    TaskDone(Id),
    /// start a note dialogue on a record
    Note(RecordKind, Id),
    /// start an edit dialogue on a contact, company or deal
    Edit(RecordKind, Id),
    /// ask to confirm deleting a record
    Delete(RecordKind, Id),
    /// the answer to a delete confirmation: only Telegram user `asker`, who asked, may give it
    DeleteAnswer { kind: RecordKind, id: Id, asker: i64, delete: bool },
    /// pick option `choice` in dialogue `nonce`; a press for an older dialogue is stale
    Choice { nonce: u32, choice: u16 },
    /// show page `page` of list `list` (see `list_pages`)
    Page { list: u32, page: u16 },
    /// import the CSV file previewed under number `n`
    ImportConfirm(u32),
    /// forget the CSV file previewed under number `n`
    ImportCancel(u32),
    /// approve (or reject) the approval with this short id
    Decide { approval: Id, approve: bool },
    /// run a failed run again from its failed step
    Retry(uuid::Uuid),
    /// press button `button` under the workflow's message `notification`
    Press { notification: Id, button: u8 },
}

fn kind_code(kind: RecordKind) -> Option<&'static str> {
    match kind {
        RecordKind::Contact => Some("c"),
        RecordKind::Company => Some("o"),
        RecordKind::Deal => Some("d"),
        RecordKind::Task => Some("t"),
        RecordKind::Pipeline | RecordKind::Note | RecordKind::User => None,
    }
}

fn kind_from_code(code: &str) -> Option<RecordKind> {
    match code {
        "c" => Some(RecordKind::Contact),
        "o" => Some(RecordKind::Company),
        "d" => Some(RecordKind::Deal),
        "t" => Some(RecordKind::Task),
        _ => None,
    }
}

impl Callback {
    /// The payload for a button. Kinds without a button code fall back to a stale payload
    /// rather than panicking; no caller builds those.
    pub fn encode(self) -> String {
        let kind = |k: RecordKind| kind_code(k).unwrap_or("?");
        let data = match self {
            Callback::Open(k, id) => format!("o:{}:{id}", kind(k)),
            Callback::MoveMenu(deal) => format!("mm:{deal}"),
            Callback::Move { deal, stage } => format!("mv:{deal}:{stage}"),
            Callback::Stage(stage) => format!("st:{stage}"),
            Callback::TaskDone(task) => format!("td:{task}"),
            Callback::Note(k, id) => format!("n:{}:{id}", kind(k)),
            Callback::Edit(k, id) => format!("e:{}:{id}", kind(k)),
            Callback::Delete(k, id) => format!("dl:{}:{id}", kind(k)),
            Callback::DeleteAnswer { kind: k, id, asker, delete } => {
                format!("{}:{}:{id}:{asker}", if delete { "dy" } else { "dn" }, kind(k))
            }
            Callback::Choice { nonce, choice } => format!("dc:{nonce}:{choice}"),
            Callback::Page { list, page } => format!("pg:{list}:{page}"),
            Callback::ImportConfirm(n) => format!("ic:{n}"),
            Callback::ImportCancel(n) => format!("ix:{n}"),
            Callback::Decide { approval, approve } => format!("ap:{approval}:{}", if approve { "y" } else { "n" }),
            Callback::Retry(run) => format!("rt:{}", run.as_hyphenated()),
            Callback::Press { notification, button } => format!("nb:{notification}:{button}"),
        };
        // i64 ids (19 digits at most), u32/u16 numbers and a hyphenated uuid bound every
        // form above to at most 45 bytes.
        debug_assert!(data.len() <= MAX_CALLBACK_DATA);
        data
    }

    pub fn parse(data: &str) -> Option<Callback> {
        if data.len() > MAX_CALLBACK_DATA {
            return None;
        }
        let parts: Vec<&str> = data.split(':').collect();
        let id = |s: &str| s.parse::<Id>().ok().filter(|&v| v > 0);
        Some(match parts.as_slice() {
            ["o", k, i] => Callback::Open(kind_from_code(k)?, id(i)?),
            ["mm", d] => Callback::MoveMenu(id(d)?),
            ["mv", d, s] => Callback::Move { deal: id(d)?, stage: id(s)? },
            ["st", s] => Callback::Stage(id(s)?),
            ["td", t] => Callback::TaskDone(id(t)?),
            ["n", k, i] => Callback::Note(kind_from_code(k)?, id(i)?),
            ["e", k, i] => Callback::Edit(kind_from_code(k)?, id(i)?),
            ["dl", k, i] => Callback::Delete(kind_from_code(k)?, id(i)?),
            [answer @ ("dy" | "dn"), k, i, a] => {
                Callback::DeleteAnswer { kind: kind_from_code(k)?, id: id(i)?, asker: id(a)?, delete: *answer == "dy" }
            }
            ["dc", n, c] => Callback::Choice { nonce: n.parse().ok()?, choice: c.parse().ok()? },
            ["pg", l, p] => Callback::Page { list: l.parse().ok()?, page: p.parse().ok()? },
            ["ic", n] => Callback::ImportConfirm(n.parse().ok()?),
            ["ix", n] => Callback::ImportCancel(n.parse().ok()?),
            ["ap", a, "y"] => Callback::Decide { approval: id(a)?, approve: true },
            ["ap", a, "n"] => Callback::Decide { approval: id(a)?, approve: false },
            ["rt", r] => Callback::Retry(uuid::Uuid::parse_str(r).ok()?),
            ["nb", n, b] => Callback::Press { notification: id(n)?, button: b.parse().ok()? },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payload_round_trips_within_64_bytes() {
        let max = Id::MAX;
        let all = [
            Callback::Open(RecordKind::Contact, max),
            Callback::Open(RecordKind::Company, 1),
            Callback::MoveMenu(max),
            Callback::Move { deal: max, stage: max },
            Callback::Stage(max),
            Callback::TaskDone(max),
            Callback::Note(RecordKind::Deal, max),
            Callback::Edit(RecordKind::Contact, max),
            Callback::Delete(RecordKind::Task, max),
            Callback::DeleteAnswer { kind: RecordKind::Company, id: max, asker: max, delete: true },
            Callback::DeleteAnswer { kind: RecordKind::Deal, id: 1, asker: 2, delete: false },
            Callback::Choice { nonce: u32::MAX, choice: u16::MAX },
            Callback::Page { list: u32::MAX, page: u16::MAX },
            Callback::Decide { approval: max, approve: true },
            Callback::Decide { approval: 1, approve: false },
            Callback::Retry(uuid::Uuid::from_u128(u128::MAX)),
            Callback::Press { notification: max, button: u8::MAX },
        ];
        for cb in all {
            let data = cb.encode();
            assert!(data.len() <= MAX_CALLBACK_DATA, "{data} is {} bytes", data.len());
            assert_eq!(Callback::parse(&data), Some(cb));
        }
    }

    #[test]
    fn forged_or_old_payloads_are_rejected() {
        for data in [
            "",
            "mv:1",
            "mv:a:b",
            "mv:-1:2",
            "o:x:1",
            "zz:1",
            "mv:1:2:3",
            "td:0",
            "ap:1:x",
            "ap:0:y",
            "rt:nope",
            "dy:c:1",
            "dy:c:1:0",
            "dz:c:1:2",
            "dl:u:1",
            &"9".repeat(65),
        ] {
            assert_eq!(Callback::parse(data), None, "{data}");
        }
    }
}
