//! Stripe's request encoding: `application/x-www-form-urlencoded` pairs whose keys nest with
//! brackets (`line_items[0][price_data][currency]=eur`, `metadata[booking_id]=…`,
//! `expand[]=…`), read into a JSON tree of strings. Objects whose keys are all indices become
//! arrays, in index order.

use serde_json::{Map, Value};

/// The decoded `(key, value)` pairs, in order, as they were sent.
pub(crate) fn pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The pairs as a tree. `Err` names the key that contradicts an earlier one (`a=1&a[b]=2`).
pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let mut root = Map::new();
    for (key, value) in pairs {
        let path = split_key(key).ok_or_else(|| key.clone())?;
        insert(&mut root, &path, value).map_err(|()| key.clone())?;
    }
    Ok(root.into_iter().map(|(k, v)| (k, arrays(v))).collect())
}

/// `a[b][]` → `["a", "b", ""]`; `None` for unbalanced brackets.
fn split_key(key: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut path = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        path.push(&inner[..close]);
        rest = &inner[close + 1..];
    }
    Some(path)
}

fn insert(map: &mut Map<String, Value>, path: &[&str], value: &str) -> Result<(), ()> {
    let Some((first, rest)) = path.split_first() else { return Err(()) };
    // `[]` appends: its index is the number of elements so far.
    let key = if first.is_empty() { map.len().to_string() } else { (*first).to_string() };
    if rest.is_empty() {
        if map.get(&key).is_some_and(Value::is_object) {
            return Err(());
        }
        map.insert(key, Value::String(value.to_string()));
        return Ok(());
    }
    match map.entry(key).or_insert_with(|| Value::Object(Map::new())) {
        Value::Object(child) => insert(child, rest, value),
        _ => Err(()),
    }
}

/// Objects keyed `0`, `1`, … become arrays, recursively.
fn arrays(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let indexed = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if indexed {
                let mut items: Vec<(usize, Value)> =
                    map.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, arrays(v)))).collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(body: &str) -> Result<Value, String> {
        parse(&pairs(body.as_bytes())).map(Value::Object)
    }

    #[test]
    fn bracket_keys_nest_and_indices_become_arrays() {
        let body = "mode=payment&line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=eur\
                    &line_items[0][price_data][product_data][name]=Consultation%20%2B%20notes\
                    &line_items[0][quantity]=1&line_items[1][price]=price_1\
                    &metadata[booking_id]=bkg_01&expand[]=line_items&expand[]=customer";
        assert_eq!(
            tree(body).unwrap(),
            json!({
                "mode": "payment",
                "line_items": [
                    {"price_data": {"currency": "eur", "product_data": {"name": "Consultation + notes"}}, "quantity": "1"},
                    {"price": "price_1"}
                ],
                "metadata": {"booking_id": "bkg_01"},
                "expand": ["line_items", "customer"]
            })
        );
    }

    #[test]
    fn contradicting_keys_are_refused() {
        assert_eq!(tree("a=1&a[b]=2"), Err("a[b]".into()));
        assert_eq!(tree("a[b]=2&a=1"), Err("a".into()));
        assert_eq!(tree("a[b=1"), Err("a[b".into()));
        assert_eq!(tree("[x]=1"), Err("[x]".into()));
    }
}
