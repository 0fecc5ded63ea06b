//! A price as a visitor reads it: `$40.00`, `€25.00`, `¥4,500`, `CHF 120.00`, from Stripe's
//! amount in the currency's smallest unit (cents; yen, which has none; fils, of which a dinar
//! has 1,000).

/// Currencies without a minor unit: the amount is whole units (docs.stripe.com/currencies).
const ZERO_DECIMAL: [&str; 16] =
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];
/// Currencies with three decimals: the amount is thousandths.
const THREE_DECIMAL: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];

/// The signs English readers know, for currencies where one sign is not ambiguous on a page
/// (others are written with their code: `CHF 120.00`).
const SYMBOLS: [(&str, &str); 17] = [
    ("usd", "$"),
    ("eur", "€"),
    ("gbp", "£"),
    ("jpy", "¥"),
    ("inr", "₹"),
    ("krw", "₩"),
    ("ils", "₪"),
    ("vnd", "₫"),
    ("php", "₱"),
    ("cny", "CN¥"),
    ("cad", "CA$"),
    ("aud", "A$"),
    ("nzd", "NZ$"),
    ("hkd", "HK$"),
    ("mxn", "MX$"),
    ("brl", "R$"),
    ("twd", "NT$"),
];

/// `amount` of `currency` (ISO 4217, any case) in the currency's smallest unit, written out.
pub fn price(amount: i64, currency: &str) -> String {
    let code = currency.to_ascii_lowercase();
    let decimals = if ZERO_DECIMAL.contains(&code.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&code.as_str()) {
        3
    } else {
        2
    };
    let scale = 10_u64.pow(decimals);
    let magnitude = amount.unsigned_abs();
    let mut number = grouped(magnitude / scale);
    if decimals > 0 {
        number.push_str(&format!(".{:0width$}", magnitude % scale, width = decimals as usize));
    }
    let sign = if amount < 0 { "-" } else { "" };
    match SYMBOLS.iter().find(|(c, _)| *c == code) {
        Some((_, symbol)) => format!("{sign}{symbol}{number}"),
        None => format!("{sign}{} {number}", code.to_ascii_uppercase()),
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_written_in_major_units_with_the_currencys_decimals() {
        assert_eq!(price(2500, "EUR"), "€25.00");
        assert_eq!(price(4000, "usd"), "$40.00");
        assert_eq!(price(5, "usd"), "$0.05");
        assert_eq!(price(123_456_789, "gbp"), "£1,234,567.89");
        assert_eq!(price(4500, "jpy"), "¥4,500", "yen have no minor unit");
        assert_eq!(price(50_000, "KRW"), "₩50,000");
        assert_eq!(price(12_500, "kwd"), "KWD 12.500", "a dinar is 1,000 fils");
        assert_eq!(price(12_000, "chf"), "CHF 120.00");
        assert_eq!(price(99, "cad"), "CA$0.99");
        assert_eq!(price(1_000_000, "xof"), "XOF 1,000,000");
    }
}
