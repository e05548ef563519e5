//! `GET /js/script.js` (and `/js/footfall.js`, Plausible-style `script.<ext>.js` and
//! `plausible.<ext>.js` names, `/js/extras.js`, `/js/live.js`): the tracker, hand-written
//! in tracker/ and compiled in. Served without
//! comments and spare whitespace, gzipped when the client accepts it, cacheable, with
//! the version in the ETag.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::LazyLock;

const TRACKER_SRC: &str = include_str!("../../../../tracker/footfall.js");
const LIVE_SRC: &str = include_str!("../../../../tracker/live.js");
const EXTRAS_SRC: &str = include_str!("../../../../tracker/extras.js");

/// Browsers revalidate (cheaply, by ETag) once a day, so an upgrade reaches every site
/// within a day.
const CACHE_CONTROL: &str = "public, max-age=86400, must-revalidate";

/// One script as served: identity and gzip bodies, and its ETag.
pub struct Asset {
    pub body: String,
    pub gzip: Vec<u8>,
    pub etag: String,
}

impl Asset {
    fn new(src: &str) -> Asset {
        let body = minify(src);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing into a Vec cannot fail.
        let gzip = gz
            .write_all(body.as_bytes())
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        let digest = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
        let etag = format!("\"footfall-{}-{digest}\"", env!("CARGO_PKG_VERSION"));
        Asset { body, gzip, etag }
    }
}

pub static TRACKER: LazyLock<Asset> = LazyLock::new(|| Asset::new(TRACKER_SRC));
pub static LIVE: LazyLock<Asset> = LazyLock::new(|| Asset::new(LIVE_SRC));
/// Outbound links, file downloads, tagged events and form submissions: loaded by the
/// tracker only when one of them is on, so the tracker itself stays under 2 KB gzipped.
pub static EXTRAS: LazyLock<Asset> = LazyLock::new(|| Asset::new(EXTRAS_SRC));

pub fn router() -> Router<AppState> {
    Router::new().route("/js/{file}", get(get_script))
}

/// `script.js`, `footfall.js`, `plausible.js` (Plausible's older name), and the same with
/// option names between (Plausible's `script.outbound-links.file-downloads.js`; the
/// tracker reads the options from its name).
fn is_tracker_name(file: &str) -> bool {
    let Some(stem) = file.strip_suffix(".js") else {
        return false;
    };
    let mut parts = stem.split('.');
    matches!(parts.next(), Some("script" | "footfall" | "plausible"))
        && parts.all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

async fn get_script(Path(file): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let asset: &Asset = if file == "live.js" {
        &LIVE
    } else if file == "extras.js" {
        &EXTRAS
    } else if is_tracker_name(&file) {
        &TRACKER
    } else {
        return Err(ApiError::not_found(
            "not_found",
            format!("no script {file:?}; the tracker is /js/script.js"),
        ));
    };
    Ok(serve(asset, &headers))
}

fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').map(str::trim).any(|tag| {
                tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == asset.etag.as_str()
            })
        });
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        let mut r = asset.gzip.clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        asset.body.clone().into_response()
    };
    let h = resp.headers_mut();
    if !fresh {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript"),
        );
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Sites load the script from another origin, also under Cross-Origin-Embedder-Policy.
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    resp
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'\\' || c >= 0x80
}

/// Removes comments and the whitespace a JavaScript parser does not need, keeping string
/// and regular-expression literals intact. Line breaks stay wherever automatic semicolon
/// insertion could depend on them: they go only after `; { , ( [ | & = ? :` and before
/// `} )`. Written for tracker/*.js: `//` comments only, and a `/` after one of
/// `( , = : [ ! & | ? { } ; +` or at the start starts a regular expression.
pub fn minify(src: &str) -> String {
    let s = src.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut i = 0;
    // Whitespace skipped since the last token: none, spaces only, or with a line break.
    let mut pending: Option<bool> = None;
    while i < s.len() {
        let c = s[i];
        if c == b'/' && s.get(i + 1) == Some(&b'/') {
            while i < s.len() && s[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            let newline = pending == Some(true) || c == b'\n';
            pending = Some(newline);
            i += 1;
            continue;
        }
        if let (Some(newline), Some(&prev)) = (pending.take(), out.last()) {
            let joins_words = is_ident(prev) && is_ident(c);
            let joins_ops = (prev == b'+' || prev == b'-') && prev == c;
            if newline && !(b";{,([|&=?:".contains(&prev) || c == b'}' || c == b')') {
                out.push(b'\n');
            } else if joins_words || joins_ops {
                out.push(b' ');
            }
        }
        let start = i;
        if c == b'\'' || c == b'"' || c == b'`' {
            i += 1;
            while i < s.len() && s[i] != c {
                i += if s[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'/' && out.last().is_none_or(|p| b"(,=:[!&|?{};+".contains(p)) {
            let mut class = false;
            i += 1;
            while i < s.len() && (s[i] != b'/' || class) {
                match s[i] {
                    b'\\' => i += 1,
                    b'[' => class = true,
                    b']' => class = false,
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            while i < s.len() && s[i].is_ascii_alphabetic() {
                i += 1;
            }
        } else {
            i += 1;
        }
        out.extend_from_slice(&s[start..i.min(s.len())]);
    }
    out.push(b'\n');
    // Only whole literals and ASCII punctuation were dropped, so the bytes stay UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| src.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_literals_and_significant_breaks() {
        let src = "// header\nvar a = 'x  // y', b = \"q\\\" r\";\n  // note\nvar re = /\\/js\\/[^/]*$/g;\nreturn\nx\nc = a + +b\nfunction f (k) { return k }\n";
        assert_eq!(
            minify(src),
            "var a='x  // y',b=\"q\\\" r\";var re=/\\/js\\/[^/]*$/g;return\nx\nc=a+ +b\nfunction f(k){return k}\n"
        );
    }

    #[test]
    fn division_is_not_a_regex() {
        assert_eq!(minify("x = a / b / c;"), "x=a/b/c;\n");
        assert_eq!(minify("x = (a) / 2 + f(/ b/);"), "x=(a)/2+f(/ b/);\n");
    }

    #[test]
    fn tracker_names() {
        for ok in [
            "script.js",
            "footfall.js",
            "script.outbound-links.js",
            "script.hash.file-downloads.404.js",
            "plausible.local.manual.tagged-events.js",
        ] {
            assert!(is_tracker_name(ok), "{ok}");
        }
        for bad in [
            "script",
            "x.js",
            "script..js",
            "script.A.js",
            "script.js.map",
        ] {
            assert!(!is_tracker_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_tracker_is_small_and_keeps_its_code() {
        let t = &*TRACKER;
        assert!(
            t.gzip.len() <= 2048,
            "tracker is {} bytes gzipped",
            t.gzip.len()
        );
        assert!(!t.body.contains("// "), "comments are removed");
        assert!(t.body.contains("'extras.js'"));
        assert!(EXTRAS.body.contains("'Outbound Link: Click'"));
        assert!(LIVE.body.contains("footfall-invite"));
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }
}
