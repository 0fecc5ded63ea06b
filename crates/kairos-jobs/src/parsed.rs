//! Items already read, so that an incremental sync reads only what changed: re-reading a
//! 5,000-event calendar's text for every pushed change would cost tens of milliseconds, most of
//! the sync. Entries are keyed by the item's text (a hash of it), so a hit is always the
//! reading of that exact text — correct whichever node or sync wrote it, with nothing to
//! invalidate. The calendars read least recently are dropped past [`MAX_CALENDARS`] (a
//! 5,000-event calendar holds a few MB read).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use kairos_core::calendar::{Calendar, Event, Skipped};
use kairos_store::CalendarItem;

/// Calendars whose items are kept read.
pub const MAX_CALENDARS: usize = 256;

#[derive(Default)]
struct Entry {
    used: u64,
    items: HashMap<String, (u64, Arc<Calendar>)>,
}

/// A calendar read item by item; the readings are shared with the cache, not copied.
#[derive(Default)]
pub struct ReadItems {
    parts: Vec<Arc<Calendar>>,
}

impl ReadItems {
    pub fn events(&self) -> impl Iterator<Item = &Event> + Clone {
        self.parts.iter().flat_map(|c| c.events.iter())
    }

    pub fn skipped(&self) -> impl Iterator<Item = &Skipped> {
        self.parts.iter().flat_map(|c| c.skipped.iter())
    }
}

#[derive(Default)]
pub struct ParsedItems {
    hasher: RandomState,
    state: Mutex<(u64, HashMap<String, Entry>)>,
}

impl ParsedItems {
    /// The calendar made of `items` but those in `leave_out`, reading only the ones not read
    /// before.
    pub fn read<'a>(
        &self,
        calendar_id: &str,
        items: impl Iterator<Item = &'a CalendarItem>,
        leave_out: &std::collections::HashSet<String>,
    ) -> ReadItems {
        let previous = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.1.remove(calendar_id).map(|e| e.items).unwrap_or_default()
        };
        let mut kept = HashMap::with_capacity(previous.len());
        let mut out = ReadItems::default();
        for item in items {
            let hash = self.hasher.hash_one(item.ical.as_bytes());
            let read = match previous.get(&item.remote_id) {
                Some((h, read)) if *h == hash => read.clone(),
                _ => Arc::new(read_item(item)),
            };
            if !leave_out.contains(&item.remote_id) {
                out.parts.push(read.clone());
            }
            kept.insert(item.remote_id.clone(), (hash, read));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 += 1;
        let used = state.0;
        state.1.insert(calendar_id.to_string(), Entry { used, items: kept });
        while state.1.len() > MAX_CALENDARS {
            let oldest = state.1.iter().min_by_key(|(_, e)| e.used).map(|(id, _)| id.clone());
            match oldest {
                Some(id) => state.1.remove(&id),
                None => break,
            };
        }
        out
    }
}

/// An item's text (VEVENTs, maybe VTIMEZONEs) as a calendar of its own.
pub fn item_calendar_text(ical: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{}\r\nEND:VCALENDAR\r\n", ical.trim_end())
}

/// One item read on its own (its VTIMEZONEs travel with it).
fn read_item(item: &CalendarItem) -> Calendar {
    Calendar::parse(&item_calendar_text(&item.ical)).unwrap_or_else(|e| Calendar {
        skipped: vec![Skipped { uid: None, line: 0, reason: format!("item {}: {e}", item.remote_id) }],
        ..Calendar::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(id: &str, summary: &str) -> CalendarItem {
        CalendarItem {
            remote_id: id.into(),
            etag: None,
            ical: format!(
                "BEGIN:VEVENT\r\nUID:{id}\r\nSUMMARY:{summary}\r\nDTSTART:20300101T100000Z\r\nDTEND:20300101T110000Z\r\nEND:VEVENT\r\n"
            ),
        }
    }

    fn none() -> std::collections::HashSet<String> {
        std::collections::HashSet::new()
    }

    #[test]
    fn items_left_out_are_not_read_into_the_calendar() {
        let cache = ParsedItems::default();
        let ours: std::collections::HashSet<String> = ["b".to_string()].into();
        assert_eq!(summaries(&cache.read("cal", [item("a", "One"), item("b", "Two")].iter(), &ours)), ["One"]);
    }

    fn summaries(c: &ReadItems) -> Vec<String> {
        let mut s: Vec<String> = c.events().filter_map(|e| e.summary.clone()).collect();
        s.sort();
        s
    }

    #[test]
    fn a_changed_item_is_read_again_and_a_removed_one_is_gone() {
        let cache = ParsedItems::default();
        let first = [item("a", "One"), item("b", "Two")];
        assert_eq!(summaries(&cache.read("cal", first.iter(), &none())), ["One", "Two"]);
        let second = [item("a", "One changed"), item("c", "Three")];
        assert_eq!(summaries(&cache.read("cal", second.iter(), &none())), ["One changed", "Three"]);
        // The same texts under another calendar are that calendar's own.
        assert_eq!(summaries(&cache.read("other", first.iter(), &none())), ["One", "Two"]);
    }

    #[test]
    fn an_unreadable_item_is_skipped_not_fatal() {
        let cache = ParsedItems::default();
        let broken = CalendarItem { remote_id: "x".into(), etag: None, ical: "BEGIN:VEVENT\r\nno colon\r\n".into() };
        let read = cache.read("cal", [item("a", "One"), broken].iter(), &none());
        assert_eq!(summaries(&read), ["One"]);
        assert_eq!(read.skipped().count(), 1);
    }

    #[test]
    fn the_least_recently_read_calendars_are_dropped() {
        let cache = ParsedItems::default();
        for n in 0..MAX_CALENDARS + 5 {
            cache.read(&format!("cal{n}"), [item("a", "One")].iter(), &none());
        }
        assert_eq!(cache.state.lock().unwrap().1.len(), MAX_CALENDARS);
        assert!(!cache.state.lock().unwrap().1.contains_key("cal0"));
    }
}
