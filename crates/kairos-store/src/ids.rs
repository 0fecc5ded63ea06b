//! Object ids: a type prefix and a ULID in lowercase Crockford base32 (`bkg_01j…`). ULIDs sort
//! by creation time, so "newest first" is "largest id first" and a cursor is simply an id.

/// A new id with `prefix` (without the underscore), e.g. `new_id("bkg")`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
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
        let a = new_id("bkg");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("bkg");
        assert!(looks_like(&a, "bkg") && !looks_like(&a, "usr"));
        assert!(b > a);
    }
}
