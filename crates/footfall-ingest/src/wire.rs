//! Wire shapes of the ingestion APIs, deserialized straight from the body (strings
//! borrowed where they have no escapes) into per-field JSON values, so that every
//! rejection can name the field at fault. Unknown keys are ignored, as Plausible's
//! endpoint does.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// One hit as a client sent it, before enrichment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WireEvent {
    pub name: String,
    pub url: String,
    pub domain: Option<String>,
    pub referrer: Option<String>,
    pub props: Vec<(String, String)>,
    pub revenue: Option<(f64, String)>,
    pub interactive: Option<bool>,
    pub hash_mode: bool,
    pub scroll_depth: Option<u8>,
    pub engaged_ms: Option<u32>,
    /// Event time (bulk API), microseconds since the epoch.
    pub timestamp_us: Option<i64>,
    pub visitor_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub title: Option<String>,
    pub id: Option<String>,
    /// The tracker saw `navigator.webdriver` (browser automation): `webdriver` / `wd`.
    pub webdriver: bool,
    /// Start a new visit even within the timeout (cookie mode: the session cookie expired).
    /// Never read from the body: only handlers set it.
    pub new_session: bool,
}

const MAX_NAME: usize = 120;
const MAX_URL: usize = 2000;
const MAX_REFERRER: usize = 2000;
/// Custom properties kept per event (Plausible's `@max_props`).
pub const MAX_PROPS: usize = 30;
const MAX_PROP_KEY: usize = 300;
const MAX_PROP_VALUE: usize = 2000;
/// How far ahead of the server's clock a `timestamp` may be (senders' clocks drift; an
/// event a year ahead is a bug, and would stretch `all` ranges and time axes to it).
const MAX_AHEAD_US: i64 = 24 * 3600 * 1_000_000;
const MAX_ENGAGED_MS: u64 = 30 * 86_400 * 1000;

/// One JSON value of an event field. Strings are borrowed from the body when they
/// have no escapes; objects (`props`, `revenue`) are kept whole, other containers only
/// by kind. Every field deserializes into this, so a wrong type is reported by the
/// conversion with the field's name instead of failing the whole event.
#[derive(Debug, Default)]
enum Flex<'a> {
    #[default]
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(Cow<'a, str>),
    Array,
    Object(Map<String, Value>),
}

impl Flex<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Flex::Null => "null",
            Flex::Bool(_) => "a boolean",
            Flex::Num(_) => "a number",
            Flex::Str(_) => "a string",
            Flex::Array => "an array",
            Flex::Object(_) => "an object",
        }
    }
    fn into_scalar_string(self) -> Option<String> {
        match self {
            Flex::Str(s) if !s.is_empty() => Some(s.into_owned()),
            Flex::Num(n) => Some(n.to_string()),
            Flex::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    fn to_bool(&self) -> Option<bool> {
        match self {
            Flex::Bool(b) => Some(*b),
            Flex::Num(n) => Some(n.as_i64() != Some(0)),
            Flex::Str(s) => Some(matches!(s.as_ref(), "true" | "1")),
            _ => None,
        }
    }
}

struct FlexVisitor;

impl<'de> Visitor<'de> for FlexVisitor {
    type Value = Flex<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Flex<'de>, E> {
        Ok(Flex::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Flex<'de>, E> {
        Ok(Flex::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Flex<'de>, E> {
        Ok(Flex::Num(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Flex<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Flex::Null, Flex::Num))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Flex<'de>, E> {
        Ok(Flex::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Flex<'de>, E> {
        Ok(Flex::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Flex<'de>, E> {
        Ok(Flex::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Flex<'de>, E> {
        Ok(Flex::Null)
    }
    fn visit_none<E>(self) -> Result<Flex<'de>, E> {
        Ok(Flex::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Flex<'de>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Flex<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Flex::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Flex<'de>, A::Error> {
        Map::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Flex::Object)
    }
}

impl<'de> Deserialize<'de> for Flex<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FlexVisitor)
    }
}

/// The fields of one event as sent, long and short keys apart. Which key wins when both
/// are sent is Plausible's (`Ingestion.Request`: `n || name`, `u || url`, `d || domain`,
/// `r || referrer`, `h || hashMode`, `i || interactive`, `m || meta || p || props`, but
/// `revenue || $`). Unknown keys are skipped without being kept.
#[derive(Default)]
struct RawHit<'a> {
    name: [Flex<'a>; 2],
    url: [Flex<'a>; 2],
    domain: [Flex<'a>; 2],
    referrer: [Flex<'a>; 2],
    props: [Flex<'a>; 4],
    revenue: [Flex<'a>; 2],
    interactive: [Flex<'a>; 2],
    hash_mode: [Flex<'a>; 2],
    scroll_depth: [Flex<'a>; 2],
    engaged: [Flex<'a>; 2],
    webdriver: [Flex<'a>; 2],
    timestamp: Flex<'a>,
    id: Flex<'a>,
    visitor_id: Flex<'a>,
    ip: Flex<'a>,
    user_agent: Flex<'a>,
    title: Flex<'a>,
    cookie: Flex<'a>,
}

struct RawHitVisitor;

impl<'de> Visitor<'de> for RawHitVisitor {
    type Value = RawHit<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event as a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHit<'de>, A::Error> {
        let mut h = RawHit::default();
        while let Some(key) = map.next_key::<Flex<'de>>()? {
            let Flex::Str(key) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let slot = match key.as_ref() {
                "n" => &mut h.name[0],
                "name" => &mut h.name[1],
                "u" => &mut h.url[0],
                "url" => &mut h.url[1],
                "d" => &mut h.domain[0],
                "domain" => &mut h.domain[1],
                "r" => &mut h.referrer[0],
                "referrer" => &mut h.referrer[1],
                "m" => &mut h.props[0],
                "meta" => &mut h.props[1],
                "p" => &mut h.props[2],
                "props" => &mut h.props[3],
                "revenue" => &mut h.revenue[0],
                "$" => &mut h.revenue[1],
                "i" => &mut h.interactive[0],
                "interactive" => &mut h.interactive[1],
                "h" => &mut h.hash_mode[0],
                "hashMode" => &mut h.hash_mode[1],
                "scroll_depth" => &mut h.scroll_depth[0],
                "sd" => &mut h.scroll_depth[1],
                "engagement_time" => &mut h.engaged[0],
                "e" => &mut h.engaged[1],
                "webdriver" => &mut h.webdriver[0],
                "wd" => &mut h.webdriver[1],
                "timestamp" => &mut h.timestamp,
                "id" => &mut h.id,
                "visitor_id" => &mut h.visitor_id,
                "ip" => &mut h.ip,
                "user_agent" => &mut h.user_agent,
                "title" => &mut h.title,
                "c" => &mut h.cookie,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value()?;
        }
        Ok(h)
    }
}

impl<'de> Deserialize<'de> for RawHit<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RawHitVisitor)
    }
}

/// The first non-null of a field's keys, taken out of the event.
fn field<'a, const N: usize>(keys: &mut [Flex<'a>; N]) -> Option<Flex<'a>> {
    keys.iter_mut()
        .map(std::mem::take)
        .find(|v| !matches!(v, Flex::Null))
}

/// The first of a field's keys that is neither null nor `false`, taken out of the event:
/// Elixir's `a || b`, as Plausible's `Ingestion.Request` reads `h || hashMode` and
/// `revenue || $` (`{"h": false, "hashMode": 1}` is hash mode).
fn truthy_field<'a, const N: usize>(keys: &mut [Flex<'a>; N]) -> Option<Flex<'a>> {
    keys.iter_mut()
        .map(std::mem::take)
        .find(|v| !matches!(v, Flex::Null | Flex::Bool(false)))
}

/// `h` / `hashMode` as Plausible reads it (`Ingestion.Request`: an `:integer` field cast
/// with Ecto, then `hash_mode == 1`): an integer, or a string that is one (`"1"`, `"+01"`);
/// hash mode is on only when it equals 1. Absent, null or `false` is off (see
/// `truthy_field`). Anything else (`true`, a float such as `1.0`, `"yes"`, an object) is
/// a cast error there, a 400, and so it is here.
fn hash_mode(v: Option<Flex<'_>>) -> Result<bool, String> {
    let bad = |kind: &str| {
        Err(format!(
            "`h` (hashMode) must be an integer, 1 for hash-based routing, got {kind}"
        ))
    };
    match v {
        None => Ok(false),
        Some(Flex::Num(n)) if n.is_i64() || n.is_u64() => Ok(n.as_u64() == Some(1)),
        Some(Flex::Str(s)) => {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(&s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return bad(&format!("the string {:?}", s.as_ref()));
            }
            Ok(!s.starts_with('-') && digits.trim_start_matches('0') == "1")
        }
        Some(Flex::Num(_)) => bad("a number that is not an integer"),
        Some(other) => bad(other.type_name()),
    }
}

fn string_field(keys: Option<Flex<'_>>, long: &str) -> Result<Option<String>, String> {
    match keys {
        None | Some(Flex::Null) => Ok(None),
        Some(Flex::Str(s)) => Ok(Some(s.into_owned())),
        Some(other) => Err(format!(
            "`{long}` must be a string, got {}",
            other.type_name()
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Custom properties as Plausible's `Ingestion.Request.put_props` reads them: an object,
/// or a JSON string holding one (the tracker's `m`/`meta`); anything else is no props
/// (not an error). Lists, maps, null and blank values (empty or whitespace) are dropped,
/// and so are blank keys; the first `MAX_PROPS` pairs are kept. A key over 300 bytes or a
/// value over 2000 bytes is an error, as there.
fn parse_props(v: Flex<'_>) -> Result<Vec<(String, String)>, String> {
    let obj = match v {
        Flex::Object(o) => o,
        Flex::Str(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(o)) => o,
            _ => return Ok(Vec::new()),
        },
        _ => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for (k, val) in obj {
        let Some(s) = scalar_to_string(&val) else {
            continue;
        };
        if k.trim_start().is_empty() || s.trim_start().is_empty() {
            continue;
        }
        if k.len() > MAX_PROP_KEY || s.len() > MAX_PROP_VALUE {
            return Err(format!(
                "`props`: keys should have at most {MAX_PROP_KEY} bytes and values {MAX_PROP_VALUE} bytes"
            ));
        }
        out.push((k, s));
        if out.len() == MAX_PROPS {
            break;
        }
    }
    Ok(out)
}

/// An integer field of an engagement event: a JSON integer or a string holding one
/// (Plausible's `parse_scroll_depth` / `parse_engagement_time`); anything else is missing.
fn engagement_int(v: Option<Flex<'_>>) -> Option<i64> {
    match v? {
        Flex::Num(n) => n.as_i64(),
        Flex::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// Current ISO 4217 codes: what Plausible accepts as a revenue currency
/// (`Plausible.Goal.valid_currencies`, the goal schema's enum of ex_money's
/// `Money.Currency.known_current_currencies`, from CLDR), plus the codes ISO 4217 added
/// since that list was printed (SLE, VED, XCG, ZWG). Sorted, for a binary search.
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW",
    "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE",
    "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP",
    "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG",
    "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG",
    "ZWL",
];

/// The number a revenue amount string starts with, as Plausible reads it: Elixir's
/// `Decimal.parse` (decimal 2.x), which returns the number and the rest, and the rest is
/// ignored (`Request.Revenue.parse_revenue_source`). So: one optional sign, digits with an
/// optional `.` and fraction (at least one digit in all: `"5."`, `".5"`), an optional
/// exponent (`e`/`E`, optional sign, digits; `"1e"` is 1), then anything (`"12.5abc"` is
/// 12.5, `"1,5"` is 1, `"1.2.3"` is 1.2). No leading whitespace (`" 1"` is no number).
/// `Inf`, `Infinity` and `NaN` parse there but ex_money's `Money.new` refuses them, and an
/// exponent sign without digits (`"1e+"`) makes Plausible fail with a 500; both are no
/// revenue here, as is an amount too large for a finite `f64`.
fn revenue_amount_prefix(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits_from = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let int = &s[i..i + digits_from(i)];
    i += int.len();
    let mut frac = "";
    if b.get(i) == Some(&b'.') {
        frac = &s[i + 1..i + 1 + digits_from(i + 1)];
        i += 1 + frac.len();
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => Some(true),
            Some(b'+') => Some(false),
            _ => None,
        };
        if exp_negative.is_some() {
            i += 1;
        }
        let digits = &s[i..i + digits_from(i)];
        if exp_negative.is_some() && digits.is_empty() {
            return None;
        }
        // Beyond ±9999 every non-zero amount is past f64's range either way.
        let magnitude = digits
            .bytes()
            .try_fold(0i64, |acc, d| {
                let next = acc * 10 + i64::from(d - b'0');
                (next <= 9999).then_some(next)
            })
            .unwrap_or(10_000);
        exp = if exp_negative == Some(true) {
            -magnitude
        } else {
            magnitude
        };
    }
    let text = format!(
        "{}{}.{}e{exp}",
        if negative { "-" } else { "" },
        if int.is_empty() { "0" } else { int },
        if frac.is_empty() { "0" } else { frac },
    );
    text.parse::<f64>().ok().filter(|a| a.is_finite())
}

/// `{currency, amount}`, as an object or a JSON string holding one, read as Plausible's
/// `Request.Revenue.put_revenue_source` reads it (with `decode_or_fallback`): both keys
/// must be there; the currency is a current ISO 4217 code exactly as written (`"usd"` is
/// none); the amount is a JSON number or a string read by `revenue_amount_prefix`.
/// Anything invalid is no revenue, never an error: the event is kept.
fn parse_revenue(v: Flex<'_>) -> Option<(f64, String)> {
    let obj = match v {
        Flex::Object(o) => o,
        Flex::Str(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(o)) => o,
            _ => return None,
        },
        _ => return None,
    };
    let currency = obj.get("currency")?.as_str()?;
    CURRENCIES.binary_search(&currency).ok()?;
    let amount = match obj.get("amount")? {
        Value::Number(n) => n.as_f64().filter(|a| a.is_finite())?,
        Value::String(s) => revenue_amount_prefix(s)?,
        _ => return None,
    };
    Some((amount, currency.to_string()))
}

/// Parses one event object (Plausible's long or short keys, plus the bulk API's extras).
pub fn parse_event(v: &Value) -> Result<WireEvent, String> {
    if !v.is_object() {
        return Err(format!(
            "an event must be a JSON object, got {}",
            type_name(v)
        ));
    }
    let raw = RawHit::deserialize(v).map_err(|e| e.to_string())?;
    raw.into_wire().map(|(hit, _)| hit)
}

/// One element of a bulk array, converted as soon as it is read: the fields of an event
/// are large (one JSON value per key), so they never pile up for a whole body.
struct BulkItem(Result<WireEvent, String>);

struct BulkItemVisitor;

fn not_an_object(kind: &str) -> BulkItem {
    BulkItem(Err(format!("an event must be a JSON object, got {kind}")))
}

impl<'de> Visitor<'de> for BulkItemVisitor {
    type Value = BulkItem;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BulkItem, A::Error> {
        let raw = RawHitVisitor.visit_map(map)?;
        Ok(BulkItem(raw.into_wire().map(|(hit, _)| hit)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<BulkItem, E> {
        Ok(not_an_object("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<BulkItem, E> {
        Ok(not_an_object("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<BulkItem, E> {
        Ok(not_an_object("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<BulkItem, E> {
        Ok(not_an_object("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<BulkItem, E> {
        Ok(not_an_object("a string"))
    }
    fn visit_unit<E>(self) -> Result<BulkItem, E> {
        Ok(not_an_object("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BulkItem, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_an_object("an array"))
    }
}

impl<'de> Deserialize<'de> for BulkItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BulkItemVisitor)
    }
}

/// Visits a bulk array, handing each element to its callback as it is read.
struct BulkArrayVisitor<F>(F);

impl<'de, F: FnMut(Result<WireEvent, String>)> Visitor<'de> for BulkArrayVisitor<F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(BulkItem(item)) = seq.next_element()? {
            (self.0)(item);
        }
        Ok(())
    }
}

/// Parses a JSON array of events in one pass over the text (no JSON tree, strings
/// borrowed), handing each event to `each` as soon as it is read, so a body's events
/// are never all held at once; a bad element is an error of its own, not of the array.
/// A syntax error stops at once (the elements before it were handed over already).
pub fn for_each_in_event_array(
    text: &str,
    each: impl FnMut(Result<WireEvent, String>),
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_seq(BulkArrayVisitor(each))?;
    de.end()
}

/// Why a JSON text did not give an event.
#[derive(Debug)]
pub enum JsonEventError {
    /// Not JSON at all (the caller answers `invalid_json`).
    Syntax(String),
    /// JSON, but not a valid event.
    Invalid(String),
}

/// Parses one event straight from its JSON text, without building a JSON tree: what
/// the ingestion endpoints do per body (or per bulk element). Also returns the
/// tracker's cookie-mode flag `c`.
pub fn parse_event_json(text: &str) -> Result<(WireEvent, bool), JsonEventError> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => Err(JsonEventError::Invalid(format!(
                "an event must be a JSON object, got {}",
                type_name(&v)
            ))),
            Err(e) => Err(JsonEventError::Syntax(e.to_string())),
        };
    }
    let raw: RawHit = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            JsonEventError::Invalid(e.to_string())
        } else {
            JsonEventError::Syntax(e.to_string())
        }
    })?;
    raw.into_wire().map_err(JsonEventError::Invalid)
}

impl RawHit<'_> {
    fn into_wire(mut self) -> Result<(WireEvent, bool), String> {
        // A string as sent, or an integer (the tracker sends 404 as a number); blank is
        // missing (Plausible's `EventName` type and `validate_required`).
        let name = match field(&mut self.name) {
            None => return Err("`name` is required".into()),
            Some(Flex::Str(s)) if s.trim().is_empty() => {
                return Err("`name` must not be empty".into());
            }
            Some(Flex::Str(s)) => s.into_owned(),
            Some(Flex::Num(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            Some(other) => {
                return Err(format!(
                    "`name` must be a string or an integer, got {}",
                    other.type_name()
                ));
            }
        };
        if name.chars().count() > MAX_NAME {
            return Err(format!("`name` longer than {MAX_NAME} characters"));
        }
        let name = if name == "pageleave" {
            "engagement".to_string()
        } else {
            name
        };
        let url = string_field(field(&mut self.url), "url")?.ok_or("`url` is required")?;
        if url.len() > MAX_URL {
            return Err(format!("`url` longer than {MAX_URL} bytes"));
        }
        // A referrer that is not a string is no referrer; a long one is cut to its first
        // 2000 characters (Plausible's `put_referrer`).
        let mut referrer = match field(&mut self.referrer) {
            Some(Flex::Str(s)) => Some(s.into_owned()),
            _ => None,
        };
        if let Some(r) = referrer.as_mut()
            && r.len() > MAX_REFERRER
            && let Some((cut, _)) = r.char_indices().nth(MAX_REFERRER)
        {
            r.truncate(cut);
        }
        let props = match field(&mut self.props) {
            Some(p) => parse_props(p)?,
            None => Vec::new(),
        };
        // `sd` and `e` are read for engagement events only, as Plausible's
        // `put_engagement_fields`: scroll depth 0-100 (above 100 is 100; negative, 255 or
        // not an integer is missing), engaged time 1 ms to 30 days (0, negative, larger or
        // not an integer is missing); an engagement event needs one of them.
        let (scroll_depth, engaged_ms) = if name == "engagement" {
            let sd = engagement_int(field(&mut self.scroll_depth))
                .and_then(|n| (n >= 0).then(|| n.min(100) as u8));
            let e = engagement_int(field(&mut self.engaged))
                .filter(|n| *n > 0 && (*n as u64) < MAX_ENGAGED_MS)
                .map(|n| n as u32);
            if sd.is_none() && e.is_none() {
                return Err(
                    "an engagement event needs a valid integer in at least one of `sd` (scroll depth) or `e` (engaged milliseconds)"
                        .into(),
                );
            }
            (sd, e)
        } else {
            (None, None)
        };
        let timestamp_us = match &self.timestamp {
            Flex::Null => None,
            Flex::Str(s) => {
                let us = chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| format!("`timestamp` must be RFC 3339, got {s:?}"))?
                    .timestamp_micros();
                if us < 0 {
                    return Err(format!("`timestamp` must be 1970 or later, got {s:?}"));
                }
                if us > chrono::Utc::now().timestamp_micros() + MAX_AHEAD_US {
                    return Err(format!(
                        "`timestamp` is more than a day ahead of the server's clock: {s:?}"
                    ));
                }
                Some(us)
            }
            other => {
                return Err(format!(
                    "`timestamp` must be a string, got {}",
                    other.type_name()
                ));
            }
        };
        let id = match std::mem::take(&mut self.id) {
            Flex::Null => None,
            v => Some(
                v.into_scalar_string()
                    .ok_or("`id` must be a string or number")?,
            ),
        };
        let visitor_id = match std::mem::take(&mut self.visitor_id) {
            Flex::Null => None,
            v => Some(
                v.into_scalar_string()
                    .ok_or("`visitor_id` must be a string or number")?,
            ),
        };
        let cookie = self.cookie.to_bool().unwrap_or(false);
        let hash_mode = hash_mode(truthy_field(&mut self.hash_mode))?;
        let hit = WireEvent {
            name,
            url,
            // Not a string: no domain (the site is the URL's host), as Plausible's
            // `map_domains` reads it.
            domain: match field(&mut self.domain) {
                Some(Flex::Str(s)) => Some(s.into_owned()),
                _ => None,
            },
            referrer,
            props,
            revenue: truthy_field(&mut self.revenue).and_then(parse_revenue),
            // Only a boolean counts (Plausible's `put_interactive`).
            interactive: match field(&mut self.interactive) {
                Some(Flex::Bool(b)) => Some(b),
                _ => None,
            },
            hash_mode,
            scroll_depth,
            engaged_ms,
            timestamp_us,
            visitor_id,
            ip: string_field(Some(std::mem::take(&mut self.ip)), "ip")?,
            user_agent: string_field(Some(std::mem::take(&mut self.user_agent)), "user_agent")?,
            title: string_field(Some(std::mem::take(&mut self.title)), "title")?,
            id,
            webdriver: field(&mut self.webdriver)
                .and_then(|v| v.to_bool())
                .unwrap_or(false),
            new_session: false,
        };
        Ok((hit, cookie))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_keys_and_null_referrer() {
        let e = parse_event(&json!({"n": "pageview", "u": "https://a.com/x", "d": "a.com", "r": null, "h": 1, "zz": 3}))
            .expect("valid");
        assert_eq!(e.name, "pageview");
        assert_eq!(e.domain.as_deref(), Some("a.com"));
        assert_eq!(e.referrer, None);
        assert!(e.hash_mode);
    }

    #[test]
    fn props_as_json_string_and_numbers() {
        let e = parse_event(
            &json!({"n": 404, "u": "https://a.com/", "m": "{\"a\":1,\"b\":[1],\"c\":\"\"}"}),
        )
        .expect("valid");
        assert_eq!(e.name, "404");
        assert_eq!(e.props, vec![("a".to_string(), "1".to_string())]);
    }

    #[test]
    fn json_text_and_values_parse_alike() {
        let text = r#"{"name":"pageview","u":"https://a.com/\u00e9","url":"https://a.com/x","p":{"k":1},"c":1,"id":7,"timestamp":"2024-01-01T00:00:00Z","extra":[1,{"a":2}]}"#;
        let (typed, cookie) = parse_event_json(text).expect("valid");
        let value: Value = serde_json::from_str(text).expect("json");
        assert_eq!(typed, parse_event(&value).expect("valid"));
        assert!(cookie);
        // `u` wins over `url` (Plausible: `u || url`); its escape is decoded.
        assert_eq!(typed.url, "https://a.com/\u{e9}");
        assert_eq!(typed.id.as_deref(), Some("7"));
        assert!(matches!(
            parse_event_json("[1]"),
            Err(JsonEventError::Invalid(m)) if m.contains("JSON object")
        ));
        assert!(matches!(
            parse_event_json("{\"n\":"),
            Err(JsonEventError::Syntax(_))
        ));
        assert!(matches!(
            parse_event_json(r#"{"n":true,"u":"x"}"#),
            Err(JsonEventError::Invalid(m)) if m.contains("`name` must be a string")
        ));
    }

    #[test]
    fn read_as_plausibles_request() {
        // Short keys win over long ones (`n || name`), but `revenue` over `$`.
        let e = parse_event(
            &json!({"n": "a", "name": "b", "u": "https://x.com/1", "url": "https://x.com/2",
            "m": "{\"k\":\"m\"}", "props": {"k": "props"},
            "revenue": {"amount": 1, "currency": "EUR"}, "$": {"amount": 2, "currency": "USD"}}),
        )
        .expect("valid");
        assert_eq!((e.name.as_str(), e.url.as_str()), ("a", "https://x.com/1"));
        assert_eq!(e.props, vec![("k".to_string(), "m".to_string())]);
        assert_eq!(e.revenue, Some((1.0, "EUR".to_string())));
        // Revenue as a JSON string; invalid revenue is none, not an error.
        let e = parse_event(
            &json!({"n": "Pay", "u": "x", "$": "{\"amount\":10.2,\"currency\":\"USD\"}"}),
        )
        .expect("valid");
        assert_eq!(e.revenue, Some((10.2, "USD".to_string())));
        let e = parse_event(
            &json!({"n": "Pay", "u": "x", "revenue": {"amount": "1831d", "currency": "ADSIE"}}),
        )
        .expect("valid");
        assert_eq!(e.revenue, None);
        // Only a boolean `interactive` counts; `sd` over 100 is 100; a long referrer is cut.
        let e = parse_event(
            &json!({"n": "engagement", "u": "x", "i": "false", "sd": 101,
            "r": "é".repeat(2500)}),
        )
        .expect("valid");
        assert_eq!((e.interactive, e.scroll_depth), (None, Some(100)));
        assert_eq!(e.referrer.map(|r| r.chars().count()), Some(2000));
        // A prop key over 300 bytes is refused.
        let long_key = "a".repeat(301);
        assert!(parse_event(&json!({"n": "a", "u": "x", "p": {long_key: "v"}})).is_err());
    }

    #[test]
    fn hash_mode_is_an_integer_cast() {
        let h = |flags: Value| {
            let mut body = json!({"n": "pageview", "u": "https://a.com/#x"});
            if let (Some(b), Some(f)) = (body.as_object_mut(), flags.as_object()) {
                b.extend(f.clone());
            }
            parse_event(&body).map(|e| e.hash_mode)
        };
        for (flags, want) in [
            (json!({}), false),
            (json!({"h": 1}), true),
            (json!({"h": 0}), false),
            (json!({"h": 2}), false),
            (json!({"h": -1}), false),
            (json!({"h": "1"}), true),
            (json!({"h": "+001"}), true),
            (json!({"h": "-1"}), false),
            (json!({"h": "10"}), false),
            (json!({"h": null, "hashMode": 1}), true),
            (json!({"h": false, "hashMode": "1"}), true),
            (json!({"h": false}), false),
            (json!({"h": 0, "hashMode": 1}), false),
        ] {
            assert_eq!(h(flags.clone()), Ok(want), "{flags}");
        }
        for flags in [
            json!({"h": true}),
            json!({"hashMode": true}),
            json!({"h": 1.0}),
            json!({"h": ""}),
            json!({"h": "1.0"}),
            json!({"h": " 1"}),
            json!({"h": "+"}),
            json!({"h": {}}),
            json!({"h": [1]}),
        ] {
            let err = h(flags.clone()).expect_err("refused");
            assert!(err.contains("`h`"), "{flags}: {err}");
        }
    }

    #[test]
    fn revenue_amount_strings_as_decimal_parse_reads_them() {
        for (text, want) in [
            ("12.5abc", Some(12.5)),
            ("1831d", Some(1831.0)),
            ("1,5", Some(1.0)),
            ("1.2.3", Some(1.2)),
            ("9.99 ", Some(9.99)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("-3", Some(-3.0)),
            ("+4", Some(4.0)),
            ("-.5", Some(-0.5)),
            ("1e3", Some(1000.0)),
            ("1E+2", Some(100.0)),
            ("2.5e-1x", Some(0.25)),
            ("1e", Some(1.0)),
            ("1.e2", Some(100.0)),
            ("1ex", Some(1.0)),
            ("0x10", Some(0.0)),
            ("007", Some(7.0)),
            ("1e-99999", Some(0.0)),
            ("1e00000000002", Some(100.0)),
            ("", None),
            (" 1", None),
            (".", None),
            ("-", None),
            ("+-1", None),
            ("--1", None),
            ("$1", None),
            ("e5", None),
            ("NaN", None),
            ("Inf", None),
            ("-Infinity", None),
            ("1e999", None),
            ("1e99999999999999999999", None),
            ("1e+", None),
            ("1e-x", None),
        ] {
            assert_eq!(revenue_amount_prefix(text), want, "{text:?}");
        }
        let long = format!("{}.5", "9".repeat(400));
        assert_eq!(revenue_amount_prefix(&long), None);
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert!(CURRENCIES.iter().all(|c| c.len() == 3));
    }

    #[test]
    fn errors_name_the_field() {
        assert!(
            parse_event(&json!({"u": "x"}))
                .unwrap_err()
                .contains("name")
        );
        assert!(
            parse_event(&json!({"name": {}, "url": "x"}))
                .unwrap_err()
                .contains("name")
        );
        assert!(
            parse_event(&json!({"name": "a"}))
                .unwrap_err()
                .contains("url")
        );
        assert!(
            parse_event(&json!({"name": "engagement", "url": "x"}))
                .unwrap_err()
                .contains("sd")
        );
        assert!(
            parse_event(&json!({"name": "a", "url": "x", "timestamp": "yesterday"}))
                .unwrap_err()
                .contains("timestamp")
        );
        for (ts, why) in [
            ("9999-12-31T23:59:59Z", "more than a day ahead"),
            ("1900-01-01T00:00:00Z", "1970 or later"),
        ] {
            let e = parse_event(&json!({"name": "a", "url": "x", "timestamp": ts})).unwrap_err();
            assert!(e.contains(why), "{ts}: {e}");
        }
        let soon = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
        assert!(parse_event(&json!({"name": "a", "url": "x", "timestamp": soon})).is_ok());
    }
}
