//! A page URL as an event sends it (`u` / `url`): `url::parse_page_url` (with its
//! shortcut for plain http(s) URLs), `url::check_page_url` (the bulk API's acceptance
//! check) and the host helpers. First byte: hash mode (low bit); the rest: the URL.
//! Properties: no panic; the shortcut parse equals the full WHATWG parse it stands
//! for; the cheap check accepts exactly what the parse accepts; the path is never empty.
#![no_main]

use footfall_enrich::url::{
    check_page_url, normalize_host, parse_page_url, parse_page_url_with_parser, raw_host,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(url) = std::str::from_utf8(rest) else {
        return;
    };
    let hash_mode = flags & 1 == 1;
    let fast = parse_page_url(url, hash_mode);
    let full = parse_page_url_with_parser(url, hash_mode);
    match (&fast, &full) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "shortcut and full parse differ"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("shortcut {a:?} but full parse {b:?}"),
    }
    assert_eq!(
        check_page_url(url, hash_mode).is_ok(),
        fast.is_ok(),
        "check_page_url disagrees with parse_page_url"
    );
    if let Ok(page) = &fast {
        assert!(!page.pathname.is_empty());
        assert!(!page.hostname.is_empty());
    }
    let host = raw_host(url);
    let _ = normalize_host(host);
});
