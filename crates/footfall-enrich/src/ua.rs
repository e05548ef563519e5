//! User agent -> browser / OS / device and bot verdict.
//!
//! Parsing uses uap-core's `regexes.yaml` (Apache-2.0, embedded from `data/`) through
//! the `ua-parser` crate; family names are then mapped to the display names below.
//! Bot markers are footfall's own lists. Results are cached because real traffic
//! repeats the same few thousand user agents.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use parking_lot::Mutex;

const REGEXES_YAML: &str = include_str!("../data/regexes.yaml");
/// crawler-user-agents' patterns (MIT, one per line; see data/README.md).
const CRAWLER_PATTERNS: &str = include_str!("../data/crawler-patterns.txt");
/// crawler-user-agents patterns that also match people's browsers and apps in uap-core's
/// corpora; the crawlers they name are still caught by the marker lists.
const SKIPPED_CRAWLER_PATTERNS: &[&str] = &[
    // "Opera Mini/4.4.39008/37.9178"
    "008\\/",
    // "WIRED/3.2.3" (the Wired iPad app)
    "RED\\/",
    // an Android 15 build id shared by many ordinary phones
    "AP3A\\.240617\\.008",
    // the WhatsApp app's own requests; the link previewer is `whatsapp_previewer`
    "WhatsApp",
    // "HTC Butterfly" phones; Topsy's crawler is the "butterfly/" marker
    "Butterfly",
    // "Lucky Ultra Sonic" phones; the crawlers are the "sonic/" marker
    "Sonic",
    // Yahoo Mail's Android app ("speedy;HTC"); Speedy Spider says "spider"
    "speedy",
];

/// Longer user agents are cut (at a char boundary) before parsing and caching.
const MAX_UA_BYTES: usize = 1024;
/// Only UAs up to this length are cached (real ones are 100-300 bytes), which bounds
/// the cache at roughly SHARDS * SHARD_CAP * (512 + ~150) bytes even under junk traffic.
const MAX_CACHED_UA_BYTES: usize = 512;
const SHARDS: usize = 16;
/// Entries per shard; a full shard is cleared (cheap, and hot UAs come back at once).
const SHARD_CAP: usize = 4096;

/// uap-core browser family -> display name (anything not listed is kept).
pub const BROWSER_NAMES: &[(&str, &str)] = &[
    ("Mobile Safari", "Safari"),
    ("Mobile Safari UI/WKWebView", "Safari"),
    ("Chrome Mobile", "Chrome"),
    ("Chrome Mobile iOS", "Chrome"),
    ("Chrome Mobile WebView", "Chrome WebView"),
    ("Firefox Mobile", "Firefox"),
    ("Firefox iOS", "Firefox"),
    ("Edge", "Microsoft Edge"),
    ("Edge Mobile", "Microsoft Edge"),
    ("Opera Mobile", "Opera"),
    ("Opera Tablet", "Opera"),
    ("IE", "Internet Explorer"),
    ("IE Mobile", "Internet Explorer"),
    ("Samsung Internet", "Samsung Internet"),
    ("Yandex Browser", "Yandex Browser"),
    ("Other", ""),
];

/// uap-core OS family -> display name (anything not listed is kept).
pub const OS_NAMES: &[(&str, &str)] = &[
    ("Mac OS X", "Mac"),
    ("Mac OS", "Mac"),
    ("Linux", "GNU/Linux"),
    ("Ubuntu", "GNU/Linux"),
    ("Kubuntu", "GNU/Linux"),
    ("Debian", "GNU/Linux"),
    ("Fedora", "GNU/Linux"),
    ("Red Hat", "GNU/Linux"),
    ("CentOS", "GNU/Linux"),
    ("Linux Mint", "GNU/Linux"),
    ("Arch Linux", "GNU/Linux"),
    ("Gentoo", "GNU/Linux"),
    ("openSUSE", "GNU/Linux"),
    ("Mageia", "GNU/Linux"),
    ("Slackware", "GNU/Linux"),
    ("Other", ""),
];

/// Case-insensitive substrings of browser automation tools.
const HEADLESS_MARKERS: &[&str] = &[
    "headlesschrome",
    "headless",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
    "lighthouse",
    "slimerjs",
    "cypress",
];

/// Case-insensitive substrings of HTTP client libraries and CLI tools.
const HTTP_LIBRARY_MARKERS: &[&str] = &[
    "curl",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "axios/",
    "node-fetch",
    "undici",
    "java-http-client",
    "apache-httpclient",
    "jakarta commons",
    "libwww-perl",
    "lwp::",
    "www-mechanize",
    "httpie",
    "guzzlehttp",
    "faraday",
    "httpclient",
    "postmanruntime",
    "insomnia",
    "reqwest",
    "winhttp",
    "libcurl",
    "aws-sdk",
    "got (https",
    "powershell",
    "http_request",
];

/// Case-insensitive substrings of crawlers, previewers, monitors, scanners, scrapers
/// and server-side integrations. "bot" is handled by [`has_bot_word`].
const CRAWLER_MARKERS: &[&str] = &[
    "crawl",
    "spider",
    "slurp",
    "scrap",
    "nutch",
    "httrack",
    "archive",
    "indexer",
    "facebookexternalhit",
    "facebookcatalog",
    "meta-external",
    "mediapartners-google",
    "adsbot",
    "google-",
    "googleagent",
    "googleother",
    "googleassociation",
    "googleimageproxy",
    "feedfetcher",
    "feedparser",
    "feedburner",
    "feedly",
    "feedbin",
    "feedvalidator",
    "newsblur",
    "bloglovin",
    "blogtrottr",
    "inoreader",
    "theoldreader",
    "nextcloud-news",
    "chatgpt-user",
    "claude-web",
    "anthropic",
    "perplexity",
    "cohere-ai",
    "spawning-ai",
    "manus-user",
    "bingpreview",
    "butterfly/",
    "sonic/",
    "ranksonic",
    "skypeuripreview",
    "embedly",
    "link preview",
    "vkshare",
    "validator",
    "w3c_",
    "w3c-",
    "check_http",
    "checker",
    "check)",
    "linkcheck",
    "link check",
    "nagios",
    "zabbix",
    "monitor",
    "uptime",
    "uptrends",
    "updown.io",
    "pingdom",
    "nodeping",
    "pingping",
    "panopta",
    "catchpoint",
    "thousandeyes",
    "statuscake",
    "site24x7",
    "websitepulse",
    "wheresitup",
    "synthetic",
    "datadog",
    "gtmetrix",
    "hotjar",
    "ghost inspector",
    "siteimprove",
    "dareboost",
    "hardenize",
    "securityheaders",
    "ssl labs",
    "dcv",
    "zgrab",
    "nikto",
    "acunetix",
    "openvas",
    "netcraft",
    "zmeu",
    "masscan",
    "nmap",
    "sqlmap",
    "watchtowr",
    "bitdiscovery",
    "blackduck",
    "cloudflare",
    "cloudfront",
    "fetch",
    "probe",
    "scan",
    "seo",
    "semrush",
    "ahrefs",
    "majestic",
    "dataprovider",
    "outbrain",
    "newspaper/",
    "disqus",
    "http_get",
    "ahc/",
    "pcore-http",
    "meltwater",
    "twingly",
    "ips-agent",
    "linkdex",
    "panscient",
    "gigablast",
    "biglotron",
    "httpunit",
    "hatena",
    "appinsights",
    "metauri",
    "nuzzel",
    "traackr",
    "wordup",
    "btwebclient",
    "ec2linkfinder",
    "postrank",
    "zapier",
    "integromat",
    "webhook",
    "captain-hook",
    "sendgrid",
    "sparkpost",
    "klaviyo",
    "omnisend",
    "twilio",
    "salesforce.com",
    "sfdc-",
    "scope3",
    "colly",
    "crusty",
    "imgproxy",
    "screenshot",
    "sitemap",
    "webcopier",
    "webcopy",
    "sitesucker",
    "download ninja",
    "webcapture",
    "indy library",
    "mollie http",
    "api client",
    "http client",
    "httpage",
    "optimizer",
    "wpumbrella",
    "managewp",
    "vaultpress",
    "onebox",
    "metadata",
    "instaparser",
    "printfriendly",
    "readable/",
    "criticalcss",
    "critical path",
    "urlcheckr",
    "speedtest",
    "evc-batch",
    "l9explore",
    // Tools seen in real access logs: FreeBSD's distfile update checker, a recruiting
    // sourcing crawler.
    "portscout",
    "robosourcer",
    "research",
    "marginalia",
    "classifier",
    "matcher",
    "adbeat",
    "abuse.",
    "searchx",
    "funnelback",
    "mailto",
    "[at]",
    "(at)",
    "http://",
    "https://",
    "+http",
];

/// Markers that contain a crawler marker but are ordinary browsers or devices.
const NOT_CRAWLER: &[&str] = &["cubot"];

/// Why a hit is treated as automated or unwanted. User agent parsing gives the first
/// four; the others come from the referrer and the site's block rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotReason {
    Crawler,
    /// Headless browsers and automation (HeadlessChrome, Puppeteer, the tracker's
    /// `navigator.webdriver` flag).
    Headless,
    HttpLibrary,
    Empty,
    SpamReferrer,
    /// A per-site block rule matched.
    Blocked,
}

impl BotReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BotReason::Crawler => "crawler",
            BotReason::Headless => "headless",
            BotReason::HttpLibrary => "http_library",
            BotReason::Empty => "empty_user_agent",
            BotReason::SpamReferrer => "spam_referrer",
            BotReason::Blocked => "blocked",
        }
    }
}

/// Parsed user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UaInfo {
    /// Display name ("Chrome", "Safari", "Microsoft Edge"); "" when unknown.
    pub browser: String,
    /// "major.minor", "major" or "".
    pub browser_version: String,
    /// Display name ("Windows", "Mac", "iOS", "Android", "GNU/Linux"); "" when unknown.
    pub os: String,
    pub os_version: String,
    /// "Desktop" | "Mobile" | "Tablet" | "TV" | "Console" | "Wearable" | "Bot" | "Unknown"
    pub device: String,
    pub bot: Option<BotReason>,
}

/// The crawler-user-agents patterns in use (minus the skipped ones).
fn crawler_patterns() -> impl Iterator<Item = &'static str> {
    CRAWLER_PATTERNS
        .lines()
        .filter(|p| !p.is_empty() && !SKIPPED_CRAWLER_PATTERNS.contains(p))
}

/// crawler-user-agents' patterns, split by what they need. All but 36 are plain text
/// (`Googlebot\/` is the text `Googlebot/`): one Aho-Corasick automaton finds them all in
/// one pass. The rest (anchors, classes, alternations) form one regex alternation. One
/// alternation of all ~1,500 patterns, as before, compiled to a large automaton and a
/// 16 MB lazy-DFA cache per thread to run at full speed.
struct CrawlerPatterns {
    texts: aho_corasick::AhoCorasick,
    regexes: regex::Regex,
}

impl CrawlerPatterns {
    fn new<'p>(patterns: impl Iterator<Item = &'p str>) -> Self {
        let mut texts = Vec::new();
        let mut regexes = Vec::new();
        for p in patterns {
            match regex_literal(p) {
                Some(text) => texts.push(text),
                None => regexes.push(format!("(?:{p})")),
            }
        }
        CrawlerPatterns {
            // The patterns are embedded and tested, so failure here is a build defect.
            texts: aho_corasick::AhoCorasick::new(&texts).expect("crawler texts build"),
            regexes: regex::Regex::new(&regexes.join("|")).expect("crawler patterns compile"),
        }
    }

    fn matches(&self, ua: &str) -> bool {
        self.texts.is_match(ua) || self.regexes.is_match(ua)
    }
}

/// The text a regex matches when it is plain text with escaped punctuation; `None` when
/// it uses any regex feature.
fn regex_literal(pattern: &str) -> Option<String> {
    let mut text = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                // `\d`, `\w`, `\b`... are classes or assertions, not escaped text.
                Some(e) if e.is_ascii_punctuation() || e == ' ' => text.push(e),
                _ => return None,
            },
            '^' | '$' | '.' | '|' | '?' | '*' | '+' | '(' | ')' | '[' | ']' | '{' | '}' => {
                return None;
            }
            c => text.push(c),
        }
    }
    Some(text)
}

/// Thread-safe parser with a bounded cache; share it in an `Arc`.
pub struct UaParser {
    extractor: ua_parser::Extractor<'static>,
    crawlers: CrawlerPatterns,
    shards: Vec<Mutex<HashMap<Box<str>, Arc<UaInfo>>>>,
    hasher: RandomState,
}

impl Default for UaParser {
    fn default() -> Self {
        Self::new()
    }
}

impl UaParser {
    /// Compiles the embedded regexes (takes a moment; build once per process).
    pub fn new() -> Self {
        // The data is embedded and tested, so failure here is a build defect.
        let regexes: ua_parser::Regexes<'static> =
            serde_yaml::from_str(REGEXES_YAML).expect("embedded regexes.yaml parses");
        let extractor =
            ua_parser::Extractor::try_from(regexes).expect("embedded regexes.yaml compiles");
        let crawlers = CrawlerPatterns::new(crawler_patterns());
        UaParser {
            extractor,
            crawlers,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Parses (or fetches from cache) a user agent.
    pub fn parse(&self, ua: &str) -> Arc<UaInfo> {
        let ua = truncate(ua.trim(), MAX_UA_BYTES);
        if ua.len() > MAX_CACHED_UA_BYTES {
            return Arc::new(self.parse_uncached(ua));
        }
        let shard = &self.shards[(self.hasher.hash_one(ua) as usize) % SHARDS];
        if let Some(hit) = shard.lock().get(ua) {
            return Arc::clone(hit);
        }
        let info = Arc::new(self.parse_uncached(ua));
        let mut map = shard.lock();
        if map.len() >= SHARD_CAP {
            map.clear();
        }
        map.insert(ua.into(), Arc::clone(&info));
        info
    }

    /// Parses without touching the cache.
    pub fn parse_uncached(&self, ua: &str) -> UaInfo {
        if matches!(ua.trim(), "" | "-") {
            return UaInfo {
                device: "Bot".into(),
                bot: Some(BotReason::Empty),
                ..UaInfo::default()
            };
        }
        let (b, o, d) = self.extractor.extract(ua);
        let mut info = UaInfo::default();
        if let Some(b) = &b {
            info.browser = map_name(BROWSER_NAMES, &b.family);
            if !info.browser.is_empty() {
                info.browser_version = version(b.major, b.minor);
            }
        }
        if let Some(o) = &o {
            info.os = map_name(OS_NAMES, &o.os);
            if !info.os.is_empty() {
                info.os_version = version(o.major.as_deref(), o.minor.as_deref());
            }
        }
        let dev_family = d.as_ref().map_or("", |d| d.device.as_ref());
        let lower = ua.to_ascii_lowercase();
        info.bot = bot_reason(&lower, dev_family == "Spider")
            .or_else(|| self.crawlers.matches(ua).then_some(BotReason::Crawler));
        info.device = if info.bot.is_some() {
            "Bot".into()
        } else {
            device_kind(&lower, dev_family, &info.os).into()
        };
        info
    }
}

/// The bot verdict for a lowercased user agent.
fn bot_reason(lower: &str, uap_spider: bool) -> Option<BotReason> {
    // Access logs write a missing user agent as "-".
    if matches!(lower.trim(), "" | "-") {
        return Some(BotReason::Empty);
    }
    if HEADLESS_MARKERS.iter().any(|m| lower.contains(m)) {
        return Some(BotReason::Headless);
    }
    if HTTP_LIBRARY_MARKERS.iter().any(|m| lower.contains(m))
        || matches!(
            lower.trim(),
            "ruby" | "python" | "java" | "php" | "perl" | "go"
        )
        || ["java/", "php/", "ruby/", "python/"]
            .iter()
            .any(|m| runtime_token(lower, m))
    {
        return Some(BotReason::HttpLibrary);
    }
    if uap_spider {
        return Some(BotReason::Crawler);
    }
    let hit = has_bot_word(lower)
        || CRAWLER_MARKERS.iter().any(|m| lower.contains(m))
        || whatsapp_previewer(lower)
        || contact_address(lower);
    if hit && !NOT_CRAWLER.iter().any(|m| lower.contains(m)) {
        return Some(BotReason::Crawler);
    }
    None
}

/// "bot" or "bots" not followed by a letter (Googlebot/, bot.html, "Bot," but not
/// "Botswana", "botocore"), or "robot" anywhere.
fn has_bot_word(lower: &str) -> bool {
    let b = lower.as_bytes();
    lower.match_indices("bot").any(|(i, _)| {
        let mut j = i + 3;
        if b.get(j) == Some(&b's') {
            j += 1;
        }
        !b.get(j).is_some_and(u8::is_ascii_alphabetic)
    }) || lower.contains("robot")
}

/// A language runtime's HTTP client: "Java/1.8.0_221", "PHP/8.1", "Python/3.11",
/// "Ruby/3.2" as a token of its own and followed by a version, but not J2ME phones'
/// "Java/ASVM", Huawei's "HuaweiJava/1.0" or Firefox's "FirePHP/0.4" extension.
fn runtime_token(lower: &str, token: &str) -> bool {
    let b = lower.as_bytes();
    lower.match_indices(token).any(|(i, _)| {
        b.get(i + token.len()).is_some_and(u8::is_ascii_digit)
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
    })
}

/// A contact e-mail address at an organisation ("help@moz.com", "crawler@example.org"),
/// which crawlers give and browsers never do. Personal webmail addresses are left out:
/// some Android apps put the user's account in their UA.
fn contact_address(lower: &str) -> bool {
    const PERSONAL: &[&str] = &[
        "gmail.",
        "googlemail.",
        "hotmail.",
        "yahoo.",
        "outlook.",
        "live.",
    ];
    let b = lower.as_bytes();
    lower.match_indices('@').any(|(i, _)| {
        let before = i > 0 && b[i - 1].is_ascii_alphanumeric();
        let domain: &str = lower[i + 1..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .next()
            .unwrap_or("");
        before
            && domain.contains('.')
            && !PERSONAL.iter().any(|p| domain.starts_with(p))
            && domain
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()))
    })
}

/// WhatsApp's link previewer sends a bare "WhatsApp/2.23.20.0 A" (platform letter),
/// where the app's own requests carry "Android/4.2 Device/...".
fn whatsapp_previewer(lower: &str) -> bool {
    let Some(rest) = lower.strip_prefix("whatsapp") else {
        return false;
    };
    let rest = rest.strip_prefix('/').map_or(rest, |v| {
        v.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
    });
    let rest = rest.trim();
    rest.len() <= 1 && rest.bytes().all(|b| b.is_ascii_alphabetic())
}

fn device_kind(lower: &str, dev_family: &str, os: &str) -> &'static str {
    const TV: &[&str] = &[
        "smart-tv",
        "smarttv",
        "smart tv",
        "googletv",
        "appletv",
        "hbbtv",
        "crkey",
        "roku",
        "bravia",
        "netcast",
        "web0s",
        "webos.tv",
        "tizen tv",
        "; aft",
        "android tv",
        "philipstv",
    ];
    const CONSOLE: &[&str] = &["playstation", "xbox", "nintendo"];
    const WEAR: &[&str] = &["watch os", "watchos", "wear os", "; wv) watch", "sm-r"];
    if CONSOLE.iter().any(|m| lower.contains(m)) {
        return "Console";
    }
    // "; AFT" starts Fire TV model names ("AFTS", "AFTMM").
    if TV.iter().any(|m| lower.contains(m)) {
        return "TV";
    }
    if WEAR.iter().any(|m| lower.contains(m)) {
        return "Wearable";
    }
    let fam = dev_family.to_ascii_lowercase();
    if fam.contains("ipad")
        || fam.contains("tablet")
        || fam.contains("kindle")
        || (lower.contains("tablet") && !lower.contains("tablet pc"))
        || lower.contains("ipad")
        || lower.contains("kindle")
        || lower.contains("silk/")
    {
        return "Tablet";
    }
    if fam.contains("iphone")
        || fam.contains("ipod")
        || fam.contains("smartphone")
        || fam.contains("feature phone")
    {
        return "Mobile";
    }
    match os {
        "Android" => {
            if lower.contains("mobile") {
                "Mobile"
            } else {
                "Tablet"
            }
        }
        "iOS" | "Windows Phone" | "BlackBerry OS" | "KaiOS" | "Symbian OS" | "Firefox OS"
        | "Tizen" | "Sailfish" => "Mobile",
        "Windows" | "Mac" | "GNU/Linux" | "Chrome OS" | "FreeBSD" | "OpenBSD" | "NetBSD"
        | "Solaris" => {
            if lower.contains("mobile") && !lower.contains("mobile safari") {
                "Mobile"
            } else {
                "Desktop"
            }
        }
        _ => {
            if lower.contains("mobile") || lower.contains("phone") {
                "Mobile"
            } else {
                "Unknown"
            }
        }
    }
}

/// Short label such as "Mac - Edge", "Windows - Chrome", "iPhone - Safari".
pub fn device_label(info: &UaInfo) -> String {
    if info.bot.is_some() {
        return "Bot".into();
    }
    let platform = match (info.os.as_str(), info.device.as_str()) {
        ("iOS", "Tablet") => "iPad",
        ("iOS", _) => "iPhone",
        ("", d) => d,
        (os, _) => os,
    };
    let browser = info
        .browser
        .strip_prefix("Microsoft ")
        .unwrap_or(&info.browser);
    match (platform.is_empty(), browser.is_empty()) {
        (false, false) => format!("{platform} - {browser}"),
        (false, true) => platform.to_string(),
        (true, false) => browser.to_string(),
        (true, true) => "Unknown".into(),
    }
}

/// Maps a uap-core family through a display-name table.
pub fn map_name(table: &[(&str, &str)], family: &str) -> String {
    table
        .iter()
        .find(|(k, _)| *k == family)
        .map_or(family, |(_, v)| v)
        .to_string()
}

/// Display name for a uap-core browser family.
pub fn browser_display_name(family: &str) -> String {
    map_name(BROWSER_NAMES, family)
}

fn version(major: Option<&str>, minor: Option<&str>) -> String {
    match (
        major.filter(|s| !s.is_empty()),
        minor.filter(|s| !s.is_empty()),
    ) {
        (Some(ma), Some(mi)) => format!("{ma}.{mi}"),
        (Some(ma), None) => ma.to_string(),
        _ => String::new(),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn parser() -> &'static UaParser {
        static P: OnceLock<UaParser> = OnceLock::new();
        P.get_or_init(UaParser::new)
    }

    #[test]
    fn regex_literal_accepts_only_plain_text() {
        assert_eq!(regex_literal(r"Googlebot\/").as_deref(), Some("Googlebot/"));
        assert_eq!(
            regex_literal(r"Mediapartners \(Googlebot\)").as_deref(),
            Some("Mediapartners (Googlebot)")
        );
        assert_eq!(regex_literal("AHC-1").as_deref(), Some("AHC-1"));
        for p in [
            r"^Seekbot",
            r"[wW]get",
            r"grub.org",
            r"Ahrefs(Bot|X)",
            r"a\d",
            r"x$",
            "a+",
        ] {
            assert_eq!(regex_literal(p), None, "{p}");
        }
    }

    /// The split matcher decides every user agent of the corpora as the single
    /// alternation of all patterns did.
    #[test]
    fn crawler_patterns_match_as_one_alternation() {
        let patterns: Vec<&str> = crawler_patterns().collect();
        let split = CrawlerPatterns::new(patterns.iter().copied());
        let whole = regex::RegexBuilder::new(
            &patterns
                .iter()
                .map(|p| format!("(?:{p})"))
                .collect::<Vec<_>>()
                .join("|"),
        )
        .size_limit(256 << 20)
        .build()
        .expect("alternation compiles");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata");
        let crawlers = std::fs::read_to_string(format!(
            "{dir}/crawler-user-agents/crawler-user-agents.json"
        ))
        .expect("read crawler-user-agents.json");
        let crawlers: Vec<serde_json::Value> =
            serde_json::from_str(&crawlers).expect("parse crawler-user-agents.json");
        let browsers = std::fs::read_to_string(format!("{dir}/uap-core/test_ua.yaml"))
            .expect("read test_ua.yaml");
        let uas: Vec<String> = crawlers
            .iter()
            .flat_map(|c| c["instances"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_string))
            .chain(
                browsers
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("- user_agent_string: "))
                    .map(|s| s.trim_matches(|c| c == '\'' || c == '"').to_string()),
            )
            .collect();
        assert!(uas.len() > 3_000, "{} user agents", uas.len());
        let mut listed = 0;
        for ua in &uas {
            assert_eq!(split.matches(ua), whole.is_match(ua), "{ua}");
            listed += usize::from(whole.is_match(ua));
        }
        assert!(listed > 1_000, "{listed} listed crawlers");
    }

    const MAC_EDGE: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
    const WIN_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
    const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36";
    const LINUX_FF: &str =
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

    #[test]
    fn common_browsers() {
        let p = parser();
        let i = p.parse(MAC_EDGE);
        assert_eq!(
            (i.browser.as_str(), i.os.as_str(), i.device.as_str()),
            ("Microsoft Edge", "Mac", "Desktop")
        );
        assert_eq!(i.browser_version, "120.0");
        assert_eq!(i.os_version, "10.15");
        assert_eq!(i.bot, None);
        assert_eq!(device_label(&i), "Mac - Edge");

        let i = p.parse(WIN_CHROME);
        assert_eq!(device_label(&i), "Windows - Chrome");
        assert_eq!(i.os_version, "10");
        let i = p.parse(IPHONE);
        assert_eq!(
            (i.device.as_str(), device_label(&i).as_str()),
            ("Mobile", "iPhone - Safari")
        );
        assert_eq!(i.os_version, "17.2");
        let i = p.parse(IPAD);
        assert_eq!(
            (i.device.as_str(), device_label(&i).as_str()),
            ("Tablet", "iPad - Safari")
        );
        let i = p.parse(ANDROID);
        assert_eq!(
            (i.device.as_str(), device_label(&i).as_str()),
            ("Mobile", "Android - Chrome")
        );
        let i = p.parse(LINUX_FF);
        assert_eq!(
            (i.browser.as_str(), i.os.as_str(), i.device.as_str()),
            ("Firefox", "GNU/Linux", "Desktop")
        );
        let ie_tablet_pc =
            "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; Tablet PC 2.0)";
        assert_eq!(p.parse(ie_tablet_pc).device, "Desktop");
        let fb_app = "Mozilla/5.0 (iPhone; CPU iPhone OS 11_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15G77 [FBAN/FBIOS;FBCR/OrangeBotswana;FBID/phone]";
        assert_eq!(p.parse(fb_app).bot, None);
        let fire_tv = "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.152 Mobile Safari/537.36";
        assert_eq!(p.parse(fire_tv).device, "TV");
        let long = format!("{WIN_CHROME} {}", "x".repeat(3000));
        assert_eq!(p.parse(&long).browser, "Chrome");
        for ua in [MAC_EDGE, WIN_CHROME, IPHONE, IPAD, ANDROID, LINUX_FF] {
            assert_eq!(p.parse(ua).bot, None, "{ua}");
        }
    }

    #[test]
    fn bots() {
        let p = parser();
        assert_eq!(p.parse("").bot, Some(BotReason::Empty));
        assert_eq!(p.parse("   ").bot, Some(BotReason::Empty));
        assert_eq!(p.parse("curl/8.4.0").bot, Some(BotReason::HttpLibrary));
        assert_eq!(
            p.parse("python-requests/2.31.0").bot,
            Some(BotReason::HttpLibrary)
        );
        assert_eq!(
            p.parse("Go-http-client/1.1").bot,
            Some(BotReason::HttpLibrary)
        );
        let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
        assert_eq!(p.parse(headless).bot, Some(BotReason::Headless));
        let gb = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let i = p.parse(gb);
        assert_eq!(i.bot, Some(BotReason::Crawler));
        assert_eq!(i.device, "Bot");
        assert_eq!(
            p.parse("facebookexternalhit/1.1").bot,
            Some(BotReason::Crawler)
        );
        assert_eq!(BotReason::HttpLibrary.as_str(), "http_library");
        assert_eq!(
            p.parse("WhatsApp/2.23.20.0 A").bot,
            Some(BotReason::Crawler)
        );
        assert_eq!(p.parse("WhatsApp").bot, Some(BotReason::Crawler));
        let app = "WhatsApp/2.11.112 Android/4.2.1 Device/asus-Nexus_7";
        assert_eq!(p.parse(app).bot, None);
        let huawei =
            "HUAWEI-U2800/001.00 Browser/Obigo-Browser/Q05A HuaweiJava/1.0 Profile/MIDP-2.0";
        assert_eq!(p.parse(huawei).bot, None);
        let firephp = "Mozilla/5.0 (Windows; U; Windows NT 6.0; en-US; rv:1.9.1.8) Gecko/20100202 Firefox/3.5.8 (.NET CLR 3.5.30729) FirePHP/0.4";
        assert_eq!(p.parse(firephp).bot, None);
        let ezooms = "Mozilla/5.0 (compatible; Ezooms/1.0; help@moz.com)";
        assert_eq!(p.parse(ezooms).bot, Some(BotReason::Crawler));
        assert_eq!(p.parse("-").bot, Some(BotReason::Empty));
        assert_eq!(p.parse("Ruby").bot, Some(BotReason::HttpLibrary));
        assert_eq!(
            p.parse("WordPress/6.4; PHP/8.1").bot,
            Some(BotReason::HttpLibrary)
        );
        assert_eq!(
            p.parse("Apache-HttpClient/4.5 (Java/1.8.0_221)").bot,
            Some(BotReason::HttpLibrary)
        );
        // Self-named tools of the 2015 access log that no list had.
        assert_eq!(p.parse("portscout/0.8.1").bot, Some(BotReason::Crawler));
        assert_eq!(p.parse("Robosourcer/1.0").bot, Some(BotReason::Crawler));
    }

    #[test]
    fn cache_returns_same_arc() {
        let p = parser();
        let a = p.parse(WIN_CHROME);
        let b = p.parse(WIN_CHROME);
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<UaParser>();
    }
}
