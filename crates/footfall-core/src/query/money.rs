//! Revenue metric values as Plausible's Stats API v2 shows them
//! (`Plausible.Stats.Goal.Revenue.format_revenue_metric`): `{"value": 1659.5,
//! "currency": "USD", "short": "$1.7K", "long": "$1,659.50"}`. Plausible formats with
//! `ex_money` and CLDR's English data; this covers the same shapes for the currencies
//! footfall accepts (ISO 4217 codes, checked at ingestion): the symbol CLDR gives in
//! English where it is not the code itself, the code and a no-break space otherwise
//! ("CHF 12.00"), and the currency's number of decimals in `long`.

use serde_json::{Value, json};

/// CLDR's English symbols for currencies whose symbol is not their code.
const SYMBOLS: &[(&str, &str)] = &[
    ("AUD", "A$"),
    ("BRL", "R$"),
    ("CAD", "CA$"),
    ("CNY", "CN¥"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("HKD", "HK$"),
    ("ILS", "₪"),
    ("INR", "₹"),
    ("JPY", "¥"),
    ("KRW", "₩"),
    ("MXN", "MX$"),
    ("NZD", "NZ$"),
    ("PHP", "₱"),
    ("TWD", "NT$"),
    ("USD", "$"),
    ("VND", "₫"),
    ("XAF", "FCFA"),
    ("XCD", "EC$"),
    ("XOF", "F\u{202f}CFA"),
    ("XPF", "CFPF"),
];

/// Currencies shown without decimals (CLDR `digits` 0).
const NO_DECIMALS: &[&str] = &[
    "ALL", "BIF", "CLP", "DJF", "GNF", "IQD", "IRR", "ISK", "JPY", "KMF", "KPW", "KRW", "LAK",
    "LBP", "MGA", "MMK", "PYG", "RSD", "RWF", "SLE", "SLL", "SOS", "SYP", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF", "YER",
];

/// Currencies shown with three decimals (CLDR `digits` 3).
const THREE_DECIMALS: &[&str] = &["BHD", "JOD", "KWD", "LYD", "OMR", "TND"];

fn decimals(currency: &str) -> usize {
    if NO_DECIMALS.contains(&currency) {
        0
    } else if THREE_DECIMALS.contains(&currency) {
        3
    } else {
        2
    }
}

/// `1234567.891` with `decimals` -> "1,234,567.89" (the absolute value).
fn grouped(amount: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, amount.abs());
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// The symbol before the number: a letter next to the digits gets a no-break space.
fn prefix(currency: &str) -> String {
    let symbol = SYMBOLS
        .iter()
        .find(|(code, _)| *code == currency)
        .map(|(_, s)| *s)
        .unwrap_or(currency);
    if symbol.chars().last().is_some_and(char::is_alphabetic) {
        format!("{symbol}\u{a0}")
    } else {
        symbol.to_string()
    }
}

fn signed(negative: bool, prefix: &str, number: &str) -> String {
    if negative {
        format!("-{prefix}{number}")
    } else {
        format!("{prefix}{number}")
    }
}

/// The full amount: "$1,659.50".
pub fn long(amount: f64, currency: &str) -> String {
    signed(
        amount < 0.0,
        &prefix(currency),
        &grouped(amount, decimals(currency)),
    )
}

/// The compact amount with one decimal, as `Money.to_string!(money, format: :short,
/// fractional_digits: 1)`: "$500.0", "$1.7K", "$3.2M".
pub fn short(amount: f64, currency: &str) -> String {
    const UNITS: [(f64, &str); 4] = [(1e3, "K"), (1e6, "M"), (1e9, "B"), (1e12, "T")];
    let abs = amount.abs();
    let mut number = grouped(abs, 1);
    for (scale, suffix) in UNITS {
        // By the rounded value: 999.96 is "$1.0K", not "$1,000.0".
        if (abs * 10.0).round() / 10.0 >= scale {
            number = format!("{}{suffix}", grouped(abs / scale, 1));
        }
    }
    signed(amount < 0.0, &prefix(currency), &number)
}

/// A revenue metric's value object. `amount` is rounded to 3 decimals, as Plausible's
/// `toDecimal64(..., 3)` reads it from ClickHouse.
pub fn money_value(amount: f64, currency: &str) -> Value {
    let value = (amount * 1000.0).round() / 1000.0;
    json!({
        "value": value,
        "currency": currency,
        "short": short(value, currency),
        "long": long(value, currency),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_examples() {
        // Plausible's query tests (`average_revenue`, `total_revenue` in USD).
        assert_eq!(
            money_value(1659.5, "USD"),
            json!({"value": 1659.5, "currency": "USD", "short": "$1.7K", "long": "$1,659.50"})
        );
        assert_eq!(
            money_value(3319.0, "USD"),
            json!({"value": 3319.0, "currency": "USD", "short": "$3.3K", "long": "$3,319.00"})
        );
        assert_eq!(short(6638.0, "USD"), "$6.6K");
        assert_eq!(short(500.0, "USD"), "$500.0");
        assert_eq!(short(600.0, "USD"), "$600.0");
        assert_eq!(
            money_value(0.0, "USD"),
            json!({"value": 0.0, "currency": "USD", "short": "$0.0", "long": "$0.00"})
        );
        assert_eq!(long(1500.0, "USD"), "$1,500.00");
        assert_eq!(short(1000.0, "USD"), "$1.0K");
    }

    #[test]
    fn currencies_and_scales() {
        assert_eq!(long(10.31, "EUR"), "€10.31");
        assert_eq!(long(1234.6, "JPY"), "¥1,235");
        assert_eq!(long(12.0, "CHF"), "CHF\u{a0}12.00");
        assert_eq!(long(1.2346, "KWD"), "KWD\u{a0}1.235");
        assert_eq!(long(-5.5, "GBP"), "-£5.50");
        assert_eq!(short(2_500_000.0, "EUR"), "€2.5M");
        assert_eq!(short(999.96, "USD"), "$1.0K");
        assert_eq!(short(1_234_567_890.0, "USD"), "$1.2B");
        assert_eq!(short(12_345.0, "CAD"), "CA$12.3K");
        assert_eq!(money_value(1.23456, "USD")["value"], json!(1.235));
    }
}
