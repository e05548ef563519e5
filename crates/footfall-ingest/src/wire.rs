//! Wire shapes of the ingestion APIs, parsed from JSON values so that every rejection
//! can name the field at fault. Unknown keys are ignored, as Plausible's endpoint does.

use serde_json::{Map, Value};

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
const MAX_PROPS: usize = 30;
const MAX_PROP_KEY: usize = 300;
const MAX_PROP_VALUE: usize = 2000;
const MAX_ENGAGED_MS: u64 = 30 * 86_400 * 1000;

fn field<'a>(obj: &'a Map<String, Value>, long: &str, short: &str) -> Option<&'a Value> {
    obj.get(long)
        .or_else(|| obj.get(short))
        .filter(|v| !v.is_null())
}

fn string_field(
    obj: &Map<String, Value>,
    long: &str,
    short: &str,
) -> Result<Option<String>, String> {
    match field(obj, long, short) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "`{long}` must be a string, got {}",
            type_name(other)
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

fn parse_props(v: &Value) -> Result<Vec<(String, String)>, String> {
    let owned;
    let obj = match v {
        Value::Object(o) => o,
        // The tracker's `m`/`meta` carries the props as a JSON string.
        Value::String(s) => {
            owned = serde_json::from_str::<Value>(s)
                .map_err(|_| "`props` must be an object".to_string())?;
            match &owned {
                Value::Object(o) => o,
                _ => return Err("`props` must be an object".into()),
            }
        }
        other => {
            return Err(format!(
                "`props` must be an object, got {}",
                type_name(other)
            ));
        }
    };
    let mut out = Vec::new();
    for (k, val) in obj {
        // Lists, maps and empty values are dropped, as Plausible does.
        let Some(s) = scalar_to_string(val) else {
            continue;
        };
        if k.is_empty() {
            continue;
        }
        if k.len() > MAX_PROP_KEY {
            return Err(format!("property key longer than {MAX_PROP_KEY} bytes"));
        }
        if s.len() > MAX_PROP_VALUE {
            return Err(format!(
                "property `{k}` value longer than {MAX_PROP_VALUE} bytes"
            ));
        }
        out.push((k.clone(), s));
    }
    if out.len() > MAX_PROPS {
        return Err(format!("at most {MAX_PROPS} properties per event"));
    }
    Ok(out)
}

fn parse_revenue(v: &Value) -> Option<(f64, String)> {
    let obj = v.as_object()?;
    let currency = obj.get("currency")?.as_str()?.to_ascii_uppercase();
    if currency.len() != 3 {
        return None;
    }
    let amount = match obj.get("amount")? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    amount.is_finite().then_some((amount, currency))
}

fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        Value::String(s) => Some(matches!(s.as_str(), "true" | "1")),
        _ => None,
    }
}

/// Parses one event object (Plausible's long or short keys, plus the bulk API's extras).
pub fn parse_event(v: &Value) -> Result<WireEvent, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("an event must be a JSON object, got {}", type_name(v)))?;
    let name = match field(obj, "name", "n") {
        None => return Err("`name` is required".into()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err("`name` must not be empty".into());
        }
        Some(Value::String(s)) => s.trim().to_string(),
        // The tracker sends 404 as a number.
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("`name` must be a string, got {}", type_name(other))),
    };
    if name.chars().count() > MAX_NAME {
        return Err(format!("`name` longer than {MAX_NAME} characters"));
    }
    let name = if name == "pageleave" {
        "engagement".to_string()
    } else {
        name
    };
    let url = string_field(obj, "url", "u")?.ok_or("`url` is required")?;
    if url.len() > MAX_URL {
        return Err(format!("`url` longer than {MAX_URL} bytes"));
    }
    let mut referrer = string_field(obj, "referrer", "r")?;
    if let Some(r) = referrer.as_mut()
        && r.len() > MAX_REFERRER
    {
        let mut cut = MAX_REFERRER;
        while !r.is_char_boundary(cut) {
            cut -= 1;
        }
        r.truncate(cut);
    }
    let props = match field(obj, "props", "p").or_else(|| field(obj, "meta", "m")) {
        Some(p) => parse_props(p)?,
        None => Vec::new(),
    };
    let scroll_depth = match field(obj, "scroll_depth", "sd") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(255) => None,
            Some(n) => Some(n.min(100) as u8),
            None => return Err("`sd` must be an integer 0-100".into()),
        },
    };
    let engaged_ms = match field(obj, "engagement_time", "e") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= MAX_ENGAGED_MS => None,
            Some(n) => Some(n as u32),
            None => return Err("`e` must be a non-negative integer (milliseconds)".into()),
        },
    };
    if name == "engagement" && scroll_depth.is_none() && engaged_ms.is_none() {
        return Err("an engagement event needs `sd` or `e`".into());
    }
    let timestamp_us = match string_field(obj, "timestamp", "timestamp")? {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(&s)
                .map_err(|_| format!("`timestamp` must be RFC 3339, got {s:?}"))?
                .timestamp_micros(),
        ),
    };
    let id = match field(obj, "id", "id") {
        None => None,
        Some(v) => Some(scalar_to_string(v).ok_or("`id` must be a string or number")?),
    };
    let visitor_id = match field(obj, "visitor_id", "visitor_id") {
        None => None,
        Some(v) => Some(scalar_to_string(v).ok_or("`visitor_id` must be a string or number")?),
    };
    Ok(WireEvent {
        name,
        url,
        domain: string_field(obj, "domain", "d")?,
        referrer,
        props,
        revenue: field(obj, "revenue", "$").and_then(parse_revenue),
        interactive: field(obj, "interactive", "i").and_then(parse_bool),
        hash_mode: field(obj, "hashMode", "h")
            .and_then(parse_bool)
            .unwrap_or(false),
        scroll_depth,
        engaged_ms,
        timestamp_us,
        visitor_id,
        ip: string_field(obj, "ip", "ip")?,
        user_agent: string_field(obj, "user_agent", "user_agent")?,
        title: string_field(obj, "title", "title")?,
        id,
        webdriver: field(obj, "webdriver", "wd")
            .and_then(parse_bool)
            .unwrap_or(false),
        new_session: false,
    })
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
    }
}
