//! User-Agent Client Hints (`Sec-CH-UA*` request headers).
//!
//! Chromium browsers freeze parts of the user agent string (Windows 11 says "Windows NT
//! 10.0", macOS stays "10_15_7", Brave and Chrome send the same string); the hints carry
//! the real brand, versions and platform. They refine a parsed user agent, never replace
//! a bot verdict, and are only read when a browser sent them.

use crate::ua::{BotReason, UaInfo};

/// Header names, lowercase, in the order of [`ClientHints`]' fields.
pub const HEADERS: [&str; 6] = [
    "sec-ch-ua",
    "sec-ch-ua-full-version-list",
    "sec-ch-ua-platform",
    "sec-ch-ua-platform-version",
    "sec-ch-ua-mobile",
    "sec-ch-ua-model",
];

/// Longest header value we look at; real ones are under 200 bytes.
const MAX_HINT_BYTES: usize = 512;

/// The raw hint header values of one request ("" when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHints {
    pub ua: String,
    pub full_version_list: String,
    pub platform: String,
    pub platform_version: String,
    pub mobile: String,
    pub model: String,
}

impl ClientHints {
    /// Reads the hints through a case-insensitive header lookup.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> ClientHints {
        Self::from_values(HEADERS.map(get))
    }

    /// The hints from the values of [`HEADERS`], in that order (`None` when absent).
    pub fn from_values(values: [Option<&str>; HEADERS.len()]) -> ClientHints {
        let [
            ua,
            full_version_list,
            platform,
            platform_version,
            mobile,
            model,
        ] = values.map(|v| {
            v.filter(|v| v.len() <= MAX_HINT_BYTES)
                .unwrap_or_default()
                .trim()
                .to_string()
        });
        ClientHints {
            ua,
            full_version_list,
            platform,
            platform_version,
            mobile,
            model,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ua.is_empty()
            && self.full_version_list.is_empty()
            && self.platform.is_empty()
            && self.platform_version.is_empty()
            && self.mobile.is_empty()
    }

    /// `info` refined by the hints; `None` when they change nothing.
    pub fn apply(&self, info: &UaInfo) -> Option<UaInfo> {
        if self.is_empty() || info.bot.is_some() {
            return None;
        }
        let mut out = info.clone();
        let brands = parse_brands(if self.full_version_list.is_empty() {
            &self.ua
        } else {
            &self.full_version_list
        });
        if brands
            .iter()
            .any(|(b, _)| b.eq_ignore_ascii_case("HeadlessChrome"))
        {
            out.bot = Some(BotReason::Headless);
            out.device = "Bot".into();
            return Some(out);
        }
        if let Some((name, version)) = best_brand(&brands) {
            let version = major_minor(version, false);
            let same_major = out.browser == name
                && out.browser_version.split('.').next() == version.split('.').next();
            // The UA string's own version is as good when it agrees on the major.
            if !same_major {
                out.browser = name;
                out.browser_version = version;
            }
        }
        let platform = unquote(&self.platform);
        let os = match platform {
            "Windows" => "Windows",
            "macOS" => "Mac",
            "Linux" => "GNU/Linux",
            "Android" => "Android",
            "Chrome OS" | "ChromeOS" | "Chromium OS" => "Chrome OS",
            "iOS" => "iOS",
            "Fuchsia" => "Fuchsia",
            _ => "",
        };
        if !os.is_empty() {
            if out.os != os {
                out.os = os.into();
                out.os_version.clear();
            }
            let pv = unquote(&self.platform_version);
            if let Some(v) = os_version(os, pv) {
                out.os_version = v;
            }
        }
        let device = match (unquote(&self.mobile), out.device.as_str()) {
            ("?1", "Desktop" | "Tablet" | "Unknown") => Some("Mobile"),
            // Chrome on Android tablets says ?0.
            ("?0", "Mobile" | "Unknown") if out.os == "Android" => Some("Tablet"),
            ("?0", "Unknown") if !out.os.is_empty() => Some("Desktop"),
            _ => None,
        };
        if let Some(d) = device {
            out.device = d.into();
        }
        (out != *info).then_some(out)
    }
}

/// `"Brand";v="1.2", "Other";v="3"` -> [(Brand, 1.2), (Other, 3)] (structured-header
/// list of quoted strings with a `v` parameter).
fn parse_brands(list: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let brand = &after[..end];
        rest = &after[end + 1..];
        let item_end = rest.find(',').unwrap_or(rest.len());
        let params = &rest[..item_end];
        let version = params
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("v="))
            .map(unquote)
            .next()
            .unwrap_or("");
        out.push((brand, version));
        rest = &rest[item_end..];
    }
    out
}

/// GREASE brands ("Not_A Brand", "Not/A)Brand") are noise by design.
fn is_grease(brand: &str) -> bool {
    let b = brand.to_ascii_lowercase();
    b.contains("not") && b.contains("brand")
}

/// The most specific brand: anything over "Google Chrome" over "Chromium".
fn best_brand<'a>(brands: &[(&'a str, &'a str)]) -> Option<(String, &'a str)> {
    let rank = |b: &str| match b {
        "Chromium" => 0,
        "Google Chrome" => 1,
        _ => 2,
    };
    brands
        .iter()
        .filter(|(b, _)| !b.is_empty() && !is_grease(b))
        .max_by_key(|(b, _)| rank(b))
        .map(|(b, v)| (brand_name(b), *v))
}

fn brand_name(brand: &str) -> String {
    match brand {
        "Google Chrome" => "Chrome",
        "Yandex" | "YaBrowser" => "Yandex Browser",
        // The UA string's parse calls it so (uap-core "Chrome Mobile WebView").
        "Android WebView" => "Chrome WebView",
        other => other,
    }
    .to_string()
}

/// "124.0.6367.91" -> "124.0"; with `drop_zero_minor`, "14.0.0" -> "14".
fn major_minor(v: &str, drop_zero_minor: bool) -> String {
    let mut parts = v.split('.').filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(ma), Some(mi)) if !(drop_zero_minor && mi.bytes().all(|b| b == b'0')) => {
            format!("{ma}.{mi}")
        }
        (Some(ma), _) => ma.to_string(),
        _ => String::new(),
    }
}

fn os_version(os: &str, platform_version: &str) -> Option<String> {
    if platform_version.is_empty() {
        return None;
    }
    if os == "Windows" {
        // Sec-CH-UA-Platform-Version is the Windows API contract version: 13+ is
        // Windows 11, 1-10 is Windows 10; 0 is 7/8/8.1, which the UA string tells.
        let major: u32 = platform_version.split('.').next()?.parse().ok()?;
        return match major {
            13.. => Some("11".into()),
            1..=12 => Some("10".into()),
            0 => None,
        };
    }
    let v = major_minor(platform_version, true);
    (!v.is_empty()).then_some(v)
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome_win() -> UaInfo {
        UaInfo {
            browser: "Chrome".into(),
            browser_version: "124.0".into(),
            os: "Windows".into(),
            os_version: "10".into(),
            device: "Desktop".into(),
            bot: None,
        }
    }

    #[test]
    fn brands_parse_with_grease() {
        let b =
            parse_brands(r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#);
        assert_eq!(
            b,
            vec![
                ("Chromium", "124"),
                ("Google Chrome", "124"),
                ("Not-A.Brand", "99")
            ]
        );
        assert_eq!(
            best_brand(&b).map(|(n, v)| (n, v.to_string())),
            Some(("Chrome".to_string(), "124".to_string()))
        );
        let b = parse_brands(r#""Not/A)Brand";v="8", "Chromium";v="126", "Brave";v="126""#);
        assert_eq!(best_brand(&b).map(|(n, _)| n), Some("Brave".to_string()));
        assert!(parse_brands("garbage").is_empty());
        let b = parse_brands(r#""Android WebView";v="124", "Chromium";v="124""#);
        assert_eq!(
            best_brand(&b).map(|(n, _)| n),
            Some("Chrome WebView".to_string())
        );
        assert_eq!(parse_brands(r#""unterminated"#), vec![]);
    }

    #[test]
    fn windows_11_and_brave() {
        let hints = ClientHints {
            ua: r#""Chromium";v="124", "Brave";v="124", "Not-A.Brand";v="99""#.into(),
            platform: r#""Windows""#.into(),
            platform_version: r#""15.0.0""#.into(),
            mobile: "?0".into(),
            ..ClientHints::default()
        };
        let out = hints.apply(&chrome_win()).expect("changed");
        assert_eq!(out.browser, "Brave");
        assert_eq!(out.browser_version, "124");
        assert_eq!(out.os_version, "11");
        assert_eq!(out.device, "Desktop");
    }

    #[test]
    fn same_browser_keeps_ua_version_and_mac_version() {
        let hints = ClientHints {
            full_version_list: r#""Google Chrome";v="124.0.6367.91", "Chromium";v="124.0.6367.91""#
                .into(),
            platform: r#""macOS""#.into(),
            platform_version: r#""14.5.0""#.into(),
            ..ClientHints::default()
        };
        let mac = UaInfo {
            os: "Mac".into(),
            os_version: "10.15".into(),
            ..chrome_win()
        };
        let out = hints.apply(&mac).expect("changed");
        assert_eq!(
            (out.browser.as_str(), out.browser_version.as_str()),
            ("Chrome", "124.0")
        );
        assert_eq!(out.os_version, "14.5");
    }

    #[test]
    fn mobile_flag_and_headless() {
        let android = UaInfo {
            os: "Android".into(),
            os_version: "10".into(),
            device: "Mobile".into(),
            ..chrome_win()
        };
        let tablet = ClientHints {
            mobile: "?0".into(),
            platform: "\"Android\"".into(),
            platform_version: "\"14.0.0\"".into(),
            ..ClientHints::default()
        };
        let out = tablet.apply(&android).expect("changed");
        assert_eq!(
            (out.device.as_str(), out.os_version.as_str()),
            ("Tablet", "14")
        );
        let headless = ClientHints {
            ua: r#""HeadlessChrome";v="124""#.into(),
            ..ClientHints::default()
        };
        assert_eq!(
            headless.apply(&chrome_win()).and_then(|i| i.bot),
            Some(BotReason::Headless)
        );
        assert_eq!(ClientHints::default().apply(&chrome_win()), None);
    }
}
