//! Where each list message is in its pages. A button holds at most 64 bytes, too few for
//! the API's cursors, so the buttons carry a list number and a page number and the cursors
//! stay here, in memory: a restart forgets them, and a press on an old list asks for the
//! command again. Only the newest lists are kept.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crm_concepts::records::RecordKind;

const KEPT: usize = 1000;

struct List {
    chat: i64,
    kind: RecordKind,
    /// the cursor that starts each page found so far (`None`: the first page)
    starts: Vec<Option<String>>,
}

#[derive(Default)]
pub struct ListPages {
    lists: Mutex<BTreeMap<u32, List>>,
    next: Mutex<u32>,
}

impl ListPages {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, List>> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new list in `chat`; returns its number.
    pub fn start(&self, chat: i64, kind: RecordKind) -> u32 {
        let id = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *next = next.wrapping_add(1);
            *next
        };
        let mut lists = self.lock();
        lists.insert(id, List { chat, kind, starts: vec![None] });
        while lists.len() > KEPT {
            lists.pop_first();
        }
        id
    }

    /// Remembers where page `page + 1` starts.
    pub fn found_next(&self, list: u32, page: u16, cursor: String) {
        if let Some(l) = self.lock().get_mut(&list) {
            let at = usize::from(page) + 1;
            if l.starts.len() == at {
                l.starts.push(Some(cursor));
            } else if l.starts.len() > at {
                l.starts[at] = Some(cursor);
            }
        }
    }

    /// The kind and the cursor of `page` of a list shown in `chat`, if it is still known.
    pub fn page(&self, chat: i64, list: u32, page: u16) -> Option<(RecordKind, Option<String>)> {
        let lists = self.lock();
        let l = lists.get(&list).filter(|l| l.chat == chat)?;
        Some((l.kind, l.starts.get(usize::from(page))?.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_found_in_order_and_only_in_their_chat() {
        let pages = ListPages::default();
        let list = pages.start(7, RecordKind::Contact);
        assert_eq!(pages.page(7, list, 0), Some((RecordKind::Contact, None)));
        assert_eq!(pages.page(7, list, 1), None);
        pages.found_next(list, 0, "c1".into());
        assert_eq!(pages.page(7, list, 1), Some((RecordKind::Contact, Some("c1".into()))));
        assert_eq!(pages.page(8, list, 1), None, "another chat");
        assert_eq!(pages.page(7, list + 1, 0), None, "an unknown list");
    }
}
