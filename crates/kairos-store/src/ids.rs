//! Object ids: a type prefix and a ULID in lowercase Crockford base32 (`bkg_01j…`). ULIDs sort
//! by creation time, so "newest first" is "largest id first" and a cursor is simply an id.
//! Within one process ids are strictly increasing, even within one millisecond.

use std::sync::{Mutex, OnceLock};

/// A new id with `prefix` (without the underscore), e.g. `new_id("bkg")`.
pub fn new_id(prefix: &str) -> String {
    static GENERATOR: OnceLock<Mutex<ulid::Generator>> = OnceLock::new();
    let generator = GENERATOR.get_or_init(|| Mutex::new(ulid::Generator::new()));
    // The generator only fails when 2^80 ids are made in one millisecond; a random ULID is
    // then still unique. A poisoned lock holds a valid generator, so keep using it.
    let mut guard = generator.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = guard.generate().unwrap_or_else(|_| ulid::Ulid::new());
    drop(guard);
    // Encoded into a buffer on the stack and lowercased in place: one allocation, where
    // `format!` with `to_string().to_ascii_lowercase()` made three (every booking makes two ids).
    let mut body = [0u8; ulid::ULID_LEN];
    let body = id.array_to_str(&mut body);
    body.make_ascii_lowercase();
    let mut out = String::with_capacity(prefix.len() + 1 + ulid::ULID_LEN);
    out.push_str(prefix);
    out.push('_');
    out.push_str(body);
    out
}

/// True when `id` has the shape of an id with `prefix`.
pub fn looks_like(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == 26 && body.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| new_id("bkg")).collect();
        assert!(looks_like(&ids[0], "bkg") && !looks_like(&ids[0], "usr"));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing, even within a millisecond");
    }
}
