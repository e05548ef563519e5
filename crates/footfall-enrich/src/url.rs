//! Page URL parsing (`event:page`, `event:hostname`, UTM and click-id parameters).

use percent_encoding::percent_decode_str;
use url::Url;

/// Longest accepted page URL, in bytes (Plausible's limit).
pub const MAX_URL_BYTES: usize = 2000;

/// Click-id query parameters we recognise, in priority order.
const CLICK_IDS: &[&str] = &[
    "gclid",
    "msclkid",
    "fbclid",
    "ttclid",
    "li_fat_id",
    "twclid",
];

/// What enrichment needs from a page URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageUrl {
    /// Lowercased host without `www.`; `(none)` when the URL has no host.
    pub hostname: String,
    /// Percent-decoded path (plus `#fragment` in hash mode); never empty.
    pub pathname: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    /// Value of `?source=` or else `?ref=` (`utm_source` wins over both when choosing a source).
    pub source_param: String,
    /// Name of the first click-id parameter present: "gclid", "msclkid", "fbclid",
    /// "ttclid", "li_fat_id", "twclid", or "".
    pub click_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("url is empty")]
    Empty,
    #[error("url is longer than {MAX_URL_BYTES} bytes")]
    TooLong,
    #[error("data: urls are not accepted")]
    DataScheme,
    #[error("invalid url: {0}")]
    Invalid(#[from] url::ParseError),
}

/// Parses a page URL as sent by a tracker or server-side call.
///
/// A URL without a scheme has no host, `(none)`, unless it starts with `//`
/// ("//example.com/a" has the host example.com). Its path is kept as written: "/about" is
/// `/about`, and "example.com/a" is `example.com/a` (Plausible's `Ingestion.Request`, whose
/// `URI.parse` reads a scheme-less URL as a path). In `hash_mode` the fragment is kept as
/// part of the path.
pub fn parse_page_url(url: &str, hash_mode: bool) -> Result<PageUrl, UrlError> {
    let raw = checked(url)?;
    if let Some(plain) = split_plain_http_url(raw) {
        return Ok(page_url_of(plain, hash_mode));
    }
    page_url_of_parsed(raw, hash_mode)
}

/// `parse_page_url` with every URL through the WHATWG parser, the common shape included:
/// the reference its shortcut is tested and benchmarked against (`benches/page_url.rs`).
pub fn parse_page_url_with_parser(url: &str, hash_mode: bool) -> Result<PageUrl, UrlError> {
    page_url_of_parsed(checked(url)?, hash_mode)
}

/// The URL trimmed, or why no page URL can come from it.
fn checked(url: &str) -> Result<&str, UrlError> {
    if url.len() > MAX_URL_BYTES {
        return Err(UrlError::TooLong);
    }
    let raw = url.trim();
    if raw.is_empty() {
        return Err(UrlError::Empty);
    }
    if raw
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
    {
        return Err(UrlError::DataScheme);
    }
    Ok(raw)
}

/// The parts of a page URL that `PageUrl` is made of, as written (not yet decoded).
struct Parts<'a> {
    /// `None` for a relative input ("/about").
    host: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
    /// The path is made to start with `/` (an opaque URL's, "about:blank"); false for a
    /// scheme-less path, which is kept as written ("example.com/a").
    rooted: bool,
}

/// The WHATWG parse (`url` crate), for every URL that `split_plain_http_url` does not take.
fn page_url_of_parsed(raw: &str, hash_mode: bool) -> Result<PageUrl, UrlError> {
    let parsed = match Url::parse(raw) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => match relative(raw)? {
            Some(u) => u,
            None => return Ok(page_url_of(scheme_less_path(raw), hash_mode)),
        },
        Err(e) => return Err(e.into()),
    };
    let host = parsed.host_str().unwrap_or("");
    let parts = Parts {
        host: (host != PLACEHOLDER_HOST).then_some(host),
        path: parsed.path(),
        query: parsed.query(),
        fragment: parsed.fragment(),
        rooted: true,
    };
    Ok(page_url_of(parts, hash_mode))
}

/// The common shape without the WHATWG parser (under `/api/event` load the parser took
/// about 3 % of the server's CPU, `perf record`): a plain `http(s)` URL
/// (`plain_http_host`) whose path, query and fragment have nothing the parser would
/// change beyond percent-encoding, which `decode` undoes anyway. Refused, so left to the
/// parser: control characters and spaces (removed or trimmed), backslashes (read as `/`),
/// and path segments that may be `.` or `..` (any `/.` or `%2e`, which the parser
/// resolves). `same_parts_as_the_parser` checks this.
fn split_plain_http_url(raw: &str) -> Option<Parts<'_>> {
    if raw.bytes().any(|b| b <= b' ' || b == 0x7F || b == b'\\') {
        return None;
    }
    let (host, rest) = plain_http_host(raw)?;
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let dot_segment = path.contains("/.")
        || path
            .as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%2e"));
    if dot_segment {
        return None;
    }
    Some(Parts {
        host: Some(host),
        path: if path.is_empty() { "/" } else { path },
        query,
        fragment,
        rooted: true,
    })
}

/// A scheme-less URL that is not rooted ("example.com/a", "about", "?utm_source=x") split
/// as RFC 3986 (and Elixir's `URI.parse`) split it: no host, the path up to the first `?`
/// or `#`, the query up to the `#`, the fragment after it.
fn scheme_less_path(raw: &str) -> Parts<'_> {
    let (rest, fragment) = match raw.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (raw, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    Parts {
        host: None,
        path,
        query,
        fragment,
        rooted: false,
    }
}

fn page_url_of(parts: Parts<'_>, hash_mode: bool) -> PageUrl {
    let mut out = PageUrl {
        hostname: match parts.host {
            Some(host) => normalize_host(host),
            None => "(none)".to_string(),
        },
        ..PageUrl::default()
    };

    let mut path = decode(parts.path);
    // No path is `/` (Plausible: `uri.path || "/"`), also before a hash-mode fragment.
    if path.is_empty() {
        path.push('/');
    }
    if hash_mode
        && let Some(fragment) = parts.fragment
        && !fragment.is_empty()
    {
        path.push('#');
        path.push_str(&decode(fragment));
    }
    let trimmed_len = path.trim_end().len();
    path.truncate(trimmed_len);
    if path.is_empty() {
        path.push('/');
    } else if parts.rooted && !path.starts_with('/') {
        // Opaque URLs such as "about:blank" have no leading slash.
        path.insert(0, '/');
    }
    out.pathname = path;

    let mut source = String::new();
    let mut ref_param = String::new();
    let mut click_rank = usize::MAX;
    // What `Url::query_pairs` does.
    for (k, v) in url::form_urlencoded::parse(parts.query.unwrap_or("").as_bytes()) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let slot = match k.as_ref() {
            "utm_source" => &mut out.utm_source,
            "utm_medium" => &mut out.utm_medium,
            "utm_campaign" => &mut out.utm_campaign,
            "utm_content" => &mut out.utm_content,
            "utm_term" => &mut out.utm_term,
            "source" => &mut source,
            "ref" => &mut ref_param,
            other => {
                if let Some(rank) = CLICK_IDS.iter().position(|c| *c == other)
                    && rank < click_rank
                {
                    click_rank = rank;
                }
                continue;
            }
        };
        // First occurrence wins.
        if slot.is_empty() {
            slot.push_str(v);
        }
    }
    out.source_param = if source.is_empty() { ref_param } else { source };
    if let Some(c) = CLICK_IDS.get(click_rank) {
        out.click_id = (*c).to_string();
    }
    out
}

/// Whether `parse_page_url` would accept `url`, without building its parts: what bulk
/// acceptance checks for every event before its 202. The common shape (an `http(s)` URL
/// whose host is plain letters, digits, dots and hyphens) needs no parse at all: for
/// such a URL the WHATWG parser cannot fail (path, query and fragment characters are
/// escaped, never refused). Anything else takes the full parse.
pub fn check_page_url(url: &str, hash_mode: bool) -> Result<(), UrlError> {
    let raw = url.trim();
    if url.len() <= MAX_URL_BYTES && is_plain_http_url(raw) {
        return Ok(());
    }
    parse_page_url(url, hash_mode).map(|_| ())
}

/// `http://` or `https://`, then a host of ASCII letters, digits, `.` and `-` that is not
/// an IPv4 form (its last label starts with a letter) nor punycode (`xn--` labels are
/// decoded and may be invalid), then the end or `/`, `?`, `#`. Ports, user info, IP
/// literals and other characters are left to the parser.
fn is_plain_http_url(raw: &str) -> bool {
    plain_http_host(raw).is_some()
}

/// The host of a URL of that shape and what follows it (from the first `/`, `?` or `#`).
fn plain_http_host(raw: &str) -> Option<(&str, &str)> {
    let bytes = raw.as_bytes();
    let rest = if bytes.len() >= 7 && bytes[..7].eq_ignore_ascii_case(b"http://") {
        &raw[7..]
    } else if bytes.len() >= 8 && bytes[..8].eq_ignore_ascii_case(b"https://") {
        &raw[8..]
    } else {
        return None;
    };
    let (host, after) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        || host
            .split('.')
            .any(|label| label.len() >= 4 && label[..4].eq_ignore_ascii_case("xn--"))
    {
        return None;
    }
    // The last label that is not empty must start with a letter: "a.1", "0x1f" or "1.2.3.4"
    // are read as IPv4 addresses, which can be refused.
    host.split('.')
        .rfind(|label| !label.is_empty())
        .is_some_and(|label| label.as_bytes()[0].is_ascii_alphabetic())
        .then_some((host, after))
}

/// Host used internally to parse relative URLs; never reported.
const PLACEHOLDER_HOST: &str = "relative.footfall.invalid";

/// A URL without a scheme: "//host/path" is read as http (its host counts) and "/path"
/// against a placeholder host (so the WHATWG parser reads its path as it reads an
/// absolute URL's); `None` for the rest ("example.com/a"), whose path `scheme_less_path`
/// takes as written.
fn relative(raw: &str) -> Result<Option<Url>, UrlError> {
    if raw.starts_with("//") {
        return Ok(Some(Url::parse(&format!("http:{raw}"))?));
    }
    if raw.starts_with('/') {
        let base = Url::parse(&format!("http://{PLACEHOLDER_HOST}/"))?;
        return Ok(Some(base.join(raw)?));
    }
    Ok(None)
}

/// The host part of a URL as written ("" when none): scheme optional, user info and port
/// removed, case kept. Cheap: no full URL parse, for checks that run on every hit.
pub fn raw_host(url: &str) -> &str {
    let url = url.trim();
    authority_host(url.split_once("://").map_or(url, |(_, rest)| rest))
}

/// The host at the start of what follows a URL's `scheme://` (or `//`): up to the first
/// `/`, `?` or `#`, without user info or port, case kept; "" when there is none.
pub fn authority_host(after_scheme: &str) -> &str {
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.split(':').next().unwrap_or("")
}

/// Lowercases, drops a trailing dot and a leading `www.`; empty becomes `(none)`.
pub fn normalize_host(host: &str) -> String {
    let h = host.trim_end_matches('.');
    let h = match h.get(..4) {
        Some(www) if www.eq_ignore_ascii_case("www.") => &h[4..],
        _ => h,
    };
    if h.is_empty() {
        "(none)".to_string()
    } else {
        h.to_ascii_lowercase()
    }
}

fn decode(s: &str) -> String {
    if !s.contains('%') {
        // Already text and nothing to decode: skip the byte-wise decoder and UTF-8 check.
        return s.to_string();
    }
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(u: &str) -> PageUrl {
        parse_page_url(u, false).expect("valid url")
    }

    /// A small deterministic generator for the generated-URL tests.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn basic_path_and_host() {
        let u = p("https://WWW.Example.com/Blog/Post/?a=1#frag");
        assert_eq!(u.hostname, "example.com");
        assert_eq!(u.pathname, "/Blog/Post/");
    }

    #[test]
    fn empty_path_is_slash() {
        assert_eq!(p("http://example.com").pathname, "/");
        assert_eq!(p("http://example.com?x=1").pathname, "/");
    }

    #[test]
    fn percent_decoding_and_trailing_space() {
        assert_eq!(p("https://e.com/caf%C3%A9%20menu").pathname, "/café menu");
        assert_eq!(p("https://e.com/a%20%20").pathname, "/a");
        assert_eq!(p("https://e.com/bad%FF").pathname, "/bad\u{FFFD}");
    }

    #[test]
    fn hash_mode() {
        let u = parse_page_url("https://e.com/#/about?x=1", true).expect("valid");
        assert_eq!(u.pathname, "/#/about?x=1");
        assert_eq!(p("https://e.com/#/about").pathname, "/");
        assert_eq!(
            parse_page_url("https://e.com/app#", true)
                .expect("valid")
                .pathname,
            "/app"
        );
    }

    #[test]
    fn utm_and_source_params() {
        let u = p(
            "https://e.com/p?utm_source=news&utm_medium=email&utm_campaign=spring+sale&utm_content=a&utm_term=b&ref=x&gclid=123",
        );
        assert_eq!(u.utm_source, "news");
        assert_eq!(u.utm_medium, "email");
        assert_eq!(u.utm_campaign, "spring sale");
        assert_eq!(u.utm_content, "a");
        assert_eq!(u.utm_term, "b");
        assert_eq!(u.source_param, "x");
        assert_eq!(u.click_id, "gclid");
        assert_eq!(u.pathname, "/p");
        let u = p("https://e.com/?ref=hn&source=newsletter&fbclid=1&msclkid=2");
        assert_eq!(u.source_param, "newsletter");
        assert_eq!(u.click_id, "msclkid");
    }

    #[test]
    fn relative_and_odd_urls() {
        let u = p("/about?utm_source=x");
        assert_eq!(u.hostname, "(none)");
        assert_eq!(u.pathname, "/about");
        assert_eq!(u.utm_source, "x");
        // Without a scheme there is no host: the text is a path, kept as written
        // (Plausible's `URI.parse`); only "//" starts a host.
        let u = p("example.com/a?utm_source=y#frag");
        assert_eq!(
            (u.hostname.as_str(), u.pathname.as_str()),
            ("(none)", "example.com/a")
        );
        assert_eq!(u.utm_source, "y");
        let u = parse_page_url("example.com/a#/b", true).expect("valid");
        assert_eq!(u.pathname, "example.com/a#/b");
        assert_eq!(p("page").pathname, "page");
        assert_eq!(p("not a url").pathname, "not a url");
        assert_eq!(p("caf%C3%A9 ").pathname, "café");
        assert_eq!(p("?utm_source=z").pathname, "/");
        assert_eq!(p("?utm_source=z").utm_source, "z");
        assert_eq!(
            parse_page_url("#/settings", true).expect("valid").pathname,
            "/#/settings"
        );
        let u = p("//www.Example.com/a?x=1");
        assert_eq!(
            (u.hostname.as_str(), u.pathname.as_str()),
            ("example.com", "/a")
        );
        assert_eq!(p("file:///home/me/index.html").hostname, "(none)");
        assert_eq!(p("app://localhost/x").hostname, "localhost");
        assert_eq!(p("about:blank").pathname, "/blank");
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            parse_page_url("data:text/html,hi", false),
            Err(UrlError::DataScheme)
        ));
        assert!(matches!(parse_page_url("", false), Err(UrlError::Empty)));
        let long = format!("https://e.com/{}", "a".repeat(2000));
        assert!(matches!(
            parse_page_url(&long, false),
            Err(UrlError::TooLong)
        ));
        assert!(parse_page_url("http://", false).is_err());
    }

    /// The shortcut never accepts what the parser refuses: generated URLs built from the
    /// characters that matter to hosts (digits, dots, `%`, `@`, `:`, brackets, `xn--`,
    /// spaces, non-ASCII), plus hand-picked edge cases.
    #[test]
    fn check_page_url_agrees_with_the_parser() {
        let cases = [
            "http://example.com/a b?c#d",
            "https://EXAMPLE.com",
            "http://1.2.3.256/",
            "http://a.1/",
            "http://0x10/",
            "http://a.b.",
            "http://a..b/",
            "http://-a-.b-/",
            "http://xn--a.com/",
            "http://a.xn--/",
            "http://exa mple.com/",
            "http://exa%41mple.com/",
            "http://[::1]/",
            "http://a@b.com/",
            "http://a.com:99999/",
            "http://./",
            "http://../",
            "http:///path",
            "HTTP://a.com\\path",
            "https://",
            "https://a.com?x#y",
            "ftp://a.com/",
        ];
        for url in cases {
            assert_eq!(
                check_page_url(url, false).is_ok(),
                parse_page_url(url, false).is_ok(),
                "{url:?}"
            );
        }
        const PIECES: &[&str] = &[
            "a", "Z", "0", "9", "1", ".", "-", "xn--", "%", "@", ":", "[", "]", " ", "é", "/", "?",
            "#", "\\", "\t", "0x", "256", "com", "_", "*", "\u{0}",
        ];
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
        for _ in 0..200_000 {
            let mut url = String::from(if next().is_multiple_of(2) {
                "http://"
            } else {
                "https://"
            });
            for _ in 0..(next() % 12) {
                url.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            if is_plain_http_url(url.trim()) {
                assert!(parse_page_url(&url, false).is_ok(), "{url:?}");
            }
        }
    }

    /// The shortcut reads every URL it takes exactly as the WHATWG parser does: generated
    /// URLs mixing what the parser changes (dot segments, `%2e`, backslashes, spaces,
    /// tabs, non-ASCII, `+` and `%` escapes in queries and fragments) with plain text,
    /// in both hash modes.
    #[test]
    fn same_parts_as_the_parser() {
        const PIECES: &[&str] = &[
            "a",
            "B",
            "/",
            "/",
            ".",
            "..",
            "/.",
            "/..",
            "%2e",
            "%2E",
            "%41",
            "%",
            "%zz",
            "%C3%A9",
            "é",
            " ",
            "\t",
            "\\",
            "?",
            "?",
            "#",
            "#",
            "&",
            "=",
            "+",
            "utm_source=",
            "ref=",
            "gclid=",
            "source=",
            "utm_campaign=",
            "'",
            "\"",
            "<",
            "`",
            "{",
            "^",
            "|",
            "~",
            ";",
            ":",
            "@",
            "!",
            "$",
            "*",
            ",",
        ];
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        let mut taken = 0;
        for i in 0..200_000 {
            let mut url = String::from(["http://", "https://", "HTTPS://"][i % 3]);
            url.push_str(["example.com", "WWW.Example.COM", "a.b.", "shop-1.example"][i % 4]);
            for _ in 0..(next() % 10) {
                url.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let raw = url.trim();
            if split_plain_http_url(raw).is_none() {
                continue;
            }
            taken += 1;
            for hash_mode in [false, true] {
                assert_eq!(
                    parse_page_url(&url, hash_mode).ok(),
                    parse_page_url_with_parser(&url, hash_mode).ok(),
                    "{url:?} hash_mode={hash_mode}"
                );
            }
        }
        // Both ways are exercised: about a fifth of the generated URLs take the shortcut.
        assert!(taken > 20_000, "only {taken} URLs took the shortcut");
    }
}
