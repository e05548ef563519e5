//! Referrer -> source (`visit:source`, `visit:referrer`).
//!
//! The host table below is footfall's own (see docs/ACCURACY.md for how it compares with
//! Snowplow's referer-parser cases). A pattern is a host suffix matched label by label
//! ("facebook.com" matches "l.facebook.com"); a label ending in `*` matches any label
//! starting with the rest ("lightmailer*.gmx.net" matches "lightmailer-bs.gmx.net"); a
//! final `.*` stands for any public suffix of one short label or a second-level
//! ccTLD registration ("google.*" matches "google.de", "news.google.co.uk").
//! Fixed patterns win over `.*` ones and longer patterns over shorter, so
//! "gemini.google.com" is Gemini and "mail.google.com" is Gmail.

use std::collections::HashMap;
use std::sync::OnceLock;

use url::Url;

/// Kind of a known source, used by [`crate::channel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Search,
    Social,
    Email,
    Ai,
    Video,
    /// Shops and marketplaces (channel Organic/Paid Shopping).
    Shopping,
    /// Ad networks' click and frame hosts (doubleclick.net, googlesyndication.com).
    Ads,
    Other,
}

use Category::*;

/// (host pattern, canonical name, category)
pub const SOURCES: &[(&str, &str, Category)] = &[
    // Search
    ("google.*", "Google", Search),
    ("com.google.android.googlequicksearchbox", "Google", Search),
    ("bing.com", "Bing", Search),
    ("cn.bing.com", "Bing", Search),
    // Edge's new-tab page (Plausible's custom_sources.json: "ntp.msn.com": "Bing").
    ("ntp.msn.com", "Bing", Search),
    ("duckduckgo.com", "DuckDuckGo", Search),
    ("yahoo.*", "Yahoo!", Search),
    ("yandex.*", "Yandex", Search),
    ("ya.ru", "Yandex", Search),
    ("baidu.com", "Baidu", Search),
    ("ecosia.org", "Ecosia", Search),
    ("search.brave.com", "Brave", Search),
    ("qwant.com", "Qwant", Search),
    ("naver.com", "Naver", Search),
    ("startpage.com", "Startpage", Search),
    ("ixquick.com", "Startpage", Search),
    ("kagi.com", "Kagi", Search),
    ("search.seznam.cz", "Seznam", Search),
    ("seznam.cz", "Seznam", Search),
    ("sogou.com", "Sogou", Search),
    ("so.com", "360.cn", Search),
    ("daum.net", "Daum", Search),
    ("mojeek.com", "Mojeek", Search),
    ("aol.*", "AOL", Search),
    ("aolsearch.com", "AOL", Search),
    ("ask.com", "Ask", Search),
    ("search-results.com", "Ask", Search),
    ("go.mail.ru", "Mail.ru", Search),
    ("voila.fr", "Voila", Search),
    ("dalesearch.com", "Dalesearch", Search),
    ("suche.1und1.de", "1und1", Search),
    ("suche.web.de", "Web.de", Search),
    ("suche.gmx.*", "GMX", Search),
    ("babylon.com", "Babylon", Search),
    ("meta.ua", "Meta.ua", Search),
    ("pricerunner.*", "PriceRunner", Search),
    ("search.lycos.com", "Lycos", Search),
    ("yippy.com", "Yippy", Search),
    ("petalsearch.com", "Petal Search", Search),
    // AI assistants
    ("chatgpt.com", "ChatGPT", Ai),
    ("chat.openai.com", "ChatGPT", Ai),
    ("perplexity.ai", "Perplexity", Ai),
    ("pplx.ai", "Perplexity", Ai),
    ("claude.ai", "Claude", Ai),
    ("gemini.google.com", "Google Gemini", Ai),
    ("bard.google.com", "Google Gemini", Ai),
    ("copilot.microsoft.com", "Microsoft Copilot", Ai),
    ("copilot.com", "Microsoft Copilot", Ai),
    ("copilot.cloud.microsoft", "Microsoft Copilot", Ai),
    ("chat.deepseek.com", "DeepSeek", Ai),
    ("chat.mistral.ai", "Mistral", Ai),
    ("character.ai", "Character.AI", Ai),
    ("meta.ai", "Meta AI", Ai),
    ("poe.com", "Poe", Ai),
    ("grok.com", "Grok", Ai),
    ("you.com", "You.com", Ai),
    ("phind.com", "Phind", Ai),
    ("chat.qwen.ai", "Qwen", Ai),
    // Email (webmail hosts)
    ("mail.google.com", "Gmail", Email),
    ("com.google.android.gm", "Gmail", Email),
    ("outlook.live.com", "Outlook.com", Email),
    ("outlook.office.com", "Outlook.com", Email),
    ("outlook.office365.com", "Outlook.com", Email),
    ("mail.live.com", "Outlook.com", Email),
    ("mail.yahoo.*", "Yahoo! Mail", Email),
    ("mail.yahoo.net", "Yahoo! Mail", Email),
    ("mail.aol.com", "AOL Mail", Email),
    ("mail.proton.me", "Proton Mail", Email),
    ("mail.protonmail.com", "Proton Mail", Email),
    ("app.fastmail.com", "Fastmail", Email),
    ("mail.zoho.*", "Zoho Mail", Email),
    ("mail.yandex.*", "Yandex Mail", Email),
    ("e.mail.ru", "Mail.ru Mail", Email),
    ("mail.qq.com", "QQ Mail", Email),
    ("mail.163.com", "NetEase Mail", Email),
    ("rich-v*.bluewin.ch", "Bluewin", Email),
    ("email.bluewin.ch", "Bluewin", Email),
    ("deref-gmx.*", "GMX", Email),
    ("lightmailer*.gmx.*", "GMX", Email),
    ("navigator*.gmx.*", "GMX", Email),
    ("deref-web.de", "Web.de", Email),
    ("3c*.web.de", "Web.de", Email),
    ("lightmailer*.web.de", "Web.de", Email),
    ("navigator*.web.de", "Web.de", Email),
    ("deref-1und1*.de", "1und1", Email),
    ("email.ionos.*", "Ionos", Email),
    ("mailbusiness.ionos.*", "Ionos", Email),
    ("mail.infomaniak.com", "Infomaniak", Email),
    ("deref-mail.com", "Mail.com", Email),
    ("mail.com", "Mail.com", Email),
    ("webmail*.orange.fr", "Orange Webmail", Email),
    ("mail*.orange.fr", "Orange Webmail", Email),
    ("wmail.orange.fr", "Orange Webmail", Email),
    ("messagerie*.orange.fr", "Orange Webmail", Email),
    ("email.t-online.de", "T-Online", Email),
    ("webmail.tim.it", "TIM", Email),
    ("upcmail.hispeed.ch", "UPC", Email),
    ("mail.vodafone.de", "Vodafone", Email),
    ("webmail.free.fr", "Free", Email),
    ("mail.seznam.cz", "Seznam Mail", Email),
    // Social / messaging / communities
    ("t.co", "Twitter", Social),
    ("twitter.com", "Twitter", Social),
    ("x.com", "Twitter", Social),
    ("com.twitter.android", "Twitter", Social),
    ("facebook.com", "Facebook", Social),
    ("fb.com", "Facebook", Social),
    ("fb.me", "Facebook", Social),
    ("com.facebook.katana", "Facebook", Social),
    ("messenger.com", "Facebook", Social),
    ("instagram.com", "Instagram", Social),
    ("linkedin.com", "LinkedIn", Social),
    ("lnkd.in", "LinkedIn", Social),
    ("com.linkedin.android", "LinkedIn", Social),
    ("reddit.com", "Reddit", Social),
    ("redd.it", "Reddit", Social),
    ("com.reddit.frontpage", "Reddit", Social),
    ("news.ycombinator.com", "Hacker News", Social),
    ("pinterest.*", "Pinterest", Social),
    ("pin.it", "Pinterest", Social),
    ("tiktok.com", "TikTok", Social),
    ("bsky.app", "Bluesky", Social),
    ("threads.net", "Threads", Social),
    ("threads.com", "Threads", Social),
    ("mastodon.social", "Mastodon", Social),
    ("fosstodon.org", "Mastodon", Social),
    ("vk.com", "Vkontakte", Social),
    ("vkontakte.ru", "Vkontakte", Social),
    ("odnoklassniki.ru", "Odnoklassniki", Social),
    ("ok.ru", "Odnoklassniki", Social),
    ("weibo.com", "Weibo", Social),
    ("tumblr.com", "Tumblr", Social),
    ("snapchat.com", "Snapchat", Social),
    ("xing.com", "XING", Social),
    ("line.me", "LINE", Social),
    ("lnk.bio", "Lnk.Bio", Social),
    ("linktr.ee", "Linktree", Other),
    ("workplace.com", "Workplace", Social),
    ("flipboard.com", "Flipboard", Social),
    ("t.me", "Telegram", Social),
    ("telegram.org", "Telegram", Social),
    ("org.telegram.messenger", "Telegram", Social),
    ("whatsapp.com", "WhatsApp", Social),
    ("wa.me", "WhatsApp", Social),
    ("slack.com", "Slack", Social),
    ("com.slack", "Slack", Social),
    ("discord.com", "Discord", Social),
    ("discordapp.com", "Discord", Social),
    ("quora.com", "Quora", Social),
    ("github.com", "GitHub", Social),
    ("stackoverflow.com", "StackOverflow", Social),
    ("statics.teams.cdn.office.net", "Microsoft Teams", Social),
    ("teams.microsoft.com", "Microsoft Teams", Social),
    ("teams.live.com", "Microsoft Teams", Social),
    // Video
    ("youtube.com", "Youtube", Video),
    ("youtu.be", "Youtube", Video),
    ("com.google.android.youtube", "Youtube", Video),
    ("vimeo.com", "Vimeo", Video),
    ("twitch.tv", "Twitch", Video),
    ("dailymotion.com", "Dailymotion", Video),
    // Shops: only amazon.com has a name (RefInspector's); other shops are their host
    // ("walmart.com", "temu.com"), as in Plausible, and Organic Shopping by that host
    // (`channel::channel_category`).
    ("amazon.com", "Amazon", Shopping),
    // Ad networks (clicks on ads shown on other sites)
    ("doubleclick.net", "Google", Ads),
    ("googlesyndication.com", "Google", Ads),
    ("googleadservices.com", "Google", Ads),
    ("adsensecustomsearchads.com", "Google", Ads),
    ("syndicatedsearch.goog", "Google", Ads),
    // Other well-known referrers
    ("wikipedia.org", "Wikipedia", Other),
    // Office on the web (Plausible's source test "officeapps.live.com and its
    // subdomains are Microsoft 365").
    ("officeapps.live.com", "Microsoft 365", Other),
];

/// Extra `utm_source` / `ref` spellings (lowercase) for canonical names: the
/// shorthands of Plausible's `custom_sources.json`. Canonical names themselves match
/// too, whatever their case; anything else is kept verbatim.
const UTM_ALIASES: &[(&str, &str)] = &[
    ("fb", "Facebook"),
    ("fcb", "Facebook"),
    ("ig", "Instagram"),
    ("yt", "Youtube"),
    ("tik.tok", "TikTok"),
];

/// `utm_source` spellings of ad campaigns (lowercase): they name their network and
/// make the visit paid whatever its `utm_medium` (Plausible's paid sources).
const PAID_UTM_SOURCES: &[(&str, &str)] = &[
    ("adwords", "Google"),
    ("google_ads", "Google"),
    ("google-ads", "Google"),
    ("googleads", "Google"),
    ("google ads", "Google"),
    ("gads", "Google"),
    ("fb-ads", "Facebook"),
    ("fbads", "Facebook"),
    ("fbad", "Facebook"),
    ("facebook-ads", "Facebook"),
    ("facebook_ads", "Facebook"),
    ("facebook_ad", "Facebook"),
    ("facebook_feed_ad", "Facebook"),
    ("yt-ads", "Youtube"),
    ("reddit-ads", "Reddit"),
    ("twitter-ads", "Twitter"),
    ("tiktokads", "TikTok"),
];

/// Whether a `utm_source` value is an ad campaign's spelling ("adwords", "fb-ads", ...).
pub fn is_paid_utm_source(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    PAID_UTM_SOURCES.iter().any(|(a, _)| *a == lower)
}

/// Multi-tenant suffixes whose subdomains belong to different owners.
const SHARED_SUFFIXES: &[&str] = &[
    "github.io",
    "gitlab.io",
    "vercel.app",
    "netlify.app",
    "pages.dev",
    "workers.dev",
    "herokuapp.com",
    "blogspot.com",
    "wordpress.com",
    "substack.com",
    "web.app",
    "firebaseapp.com",
    "fly.dev",
    "onrender.com",
    "azurewebsites.net",
    "cloudfront.net",
    "medium.com",
];

/// Second-level labels under which ccTLD registrations sit ("example.co.uk").
const SLD_LABELS: &[&str] = &[
    "co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "go", "gob", "nic",
];

/// Source of a visit derived from its referrer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Source {
    /// Canonical name ("Google") or the referrer host without `www.`.
    pub source: String,
    /// Referrer host + path without scheme, query, fragment or `www.`.
    pub referrer: String,
    /// Referrer host, lowercase, without `www.`.
    pub host: String,
    /// Category of a known host.
    pub category: Option<Category>,
}

/// Source for a referrer URL, as Plausible's `Ingestion.Source` reads it: `None` when
/// empty, unparsable, without a host, of a scheme other than `http`, `https` and
/// `android-app` (no scheme either), from `localhost`, or internal: the same host as
/// `page_host` (both without `www.`; a subdomain of the site is a referrer of its own).
/// An app referrer keeps its scheme (`android-app://com.example.app`) unless known.
pub fn referrer_source(referrer: &str, page_host: &str) -> Option<Source> {
    let raw = referrer.trim();
    if raw.is_empty() {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    let app = match url.scheme() {
        "http" | "https" => false,
        "android-app" => true,
        _ => return None,
    };
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    // Development servers are not sources (Plausible ignores them too).
    if host.is_empty() || host == "localhost" {
        return None;
    }
    let page_host = page_host.trim_end_matches('.').to_ascii_lowercase();
    let page_host = page_host.strip_prefix("www.").unwrap_or(&page_host);
    if host == page_host {
        return None;
    }
    let known = lookup_host(host);
    let prefix = if app { "android-app://" } else { "" };
    let source = known.map_or_else(|| format!("{prefix}{host}"), |(name, _)| name.to_string());
    let path = url.path().trim_end_matches('/');
    Some(Source {
        source,
        referrer: format!("{prefix}{host}{path}"),
        host: host.to_string(),
        category: known.map(|(_, c)| c),
    })
}

/// Canonical source name for a `utm_source` / `source` / `ref` value, as Plausible's
/// `Source.canonical` maps it: a shorthand ("fb", "adwords") or a canonical name in any
/// case ("google", "YOUTUBE") becomes the canonical name; anything else, hosts included
/// ("chatgpt.com", "news.ycombinator.com"), is returned trimmed but otherwise verbatim.
pub fn canonical_utm_source(value: &str) -> String {
    let v = value.trim();
    if v.is_empty() {
        return String::new();
    }
    let lower = v.to_ascii_lowercase();
    if let Some((_, name)) = UTM_ALIASES
        .iter()
        .chain(PAID_UTM_SOURCES)
        .find(|(a, _)| *a == lower)
    {
        return (*name).to_string();
    }
    if let Some((_, name, _)) = SOURCES
        .iter()
        .find(|(_, n, _)| n.eq_ignore_ascii_case(&lower))
    {
        return (*name).to_string();
    }
    v.to_string()
}

/// A [`SOURCES`] pattern split into labels once.
struct Pattern {
    labels: Vec<&'static str>,
    any_suffix: bool,
    name: &'static str,
    category: Category,
    /// Fixed patterns first, then longer ones.
    rank: (bool, usize),
}

impl Pattern {
    fn matches(&self, labels: &[&str], suffix: Option<usize>) -> bool {
        let body = if self.any_suffix {
            match suffix {
                Some(n) => &labels[..labels.len() - n],
                None => return false,
            }
        } else {
            labels
        };
        labels_end_with(body, &self.labels)
    }
}

/// [`SOURCES`] indexed by the labels a matching host must end with, so a lookup tries a
/// handful of patterns instead of all of them (a scan of every pattern was ~8,000
/// instructions per referrer, about a tenth of the work of a new visit's hit).
struct Patterns {
    all: Vec<Pattern>,
    /// Fixed patterns by their last two labels ("bing.com"), or their only one.
    fixed: HashMap<&'static str, Vec<usize>>,
    /// `.*` patterns by the label just before the public suffix ("google").
    any_suffix: HashMap<&'static str, Vec<usize>>,
    /// Patterns whose indexed labels hold a wildcard ("deref-1und1*.de"): always tried.
    unindexed: Vec<usize>,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let all: Vec<Pattern> = SOURCES
            .iter()
            .map(|&(pat, name, category)| {
                let (body, any_suffix) = match pat.strip_suffix(".*") {
                    Some(b) => (b, true),
                    None => (pat, false),
                };
                Pattern {
                    labels: body.split('.').collect(),
                    any_suffix,
                    name,
                    category,
                    rank: (!any_suffix, pat.len()),
                }
            })
            .collect();
        let mut fixed: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut any_suffix: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut unindexed = Vec::new();
        for (i, (p, &(pat, _, _))) in all.iter().zip(SOURCES).enumerate() {
            let (map, key) = if p.any_suffix {
                (&mut any_suffix, p.labels.last().copied().unwrap_or(""))
            } else {
                (&mut fixed, last_labels(pat, 2))
            };
            if key.contains('*') {
                unindexed.push(i);
            } else {
                map.entry(key).or_default().push(i);
            }
        }
        Patterns {
            all,
            fixed,
            any_suffix,
            unindexed,
        }
    })
}

/// Looks a lowercase host (without `www.`) up in [`SOURCES`].
pub fn lookup_host(host: &str) -> Option<(&'static str, Category)> {
    let labels: Vec<&str> = host.split('.').collect();
    let suffix = public_suffix_labels(&labels);
    let p = patterns();
    let fixed = [last_labels(host, 2), last_labels(host, 1)]
        .into_iter()
        .filter_map(|key| p.fixed.get(key));
    let any_suffix = suffix
        .filter(|&n| n < labels.len())
        .and_then(|n| p.any_suffix.get(labels[labels.len() - n - 1]));
    fixed
        .chain(any_suffix)
        .flatten()
        .chain(&p.unindexed)
        .copied()
        .filter(|&i| p.all[i].matches(&labels, suffix))
        // Among equal ranks the later pattern, as the scan below picks it.
        .max_by_key(|&i| (p.all[i].rank, i))
        .map(|i| (p.all[i].name, p.all[i].category))
}

/// [`lookup_host`] by trying every pattern: the reference its index is tested and
/// benchmarked against (`benches/referrer.rs`).
pub fn lookup_host_by_scan(host: &str) -> Option<(&'static str, Category)> {
    let labels: Vec<&str> = host.split('.').collect();
    let suffix = public_suffix_labels(&labels);
    patterns()
        .all
        .iter()
        .filter(|pat| pat.matches(&labels, suffix))
        .max_by_key(|pat| pat.rank)
        .map(|pat| (pat.name, pat.category))
}

/// `host` ends with `pattern`, label by label; a pattern label ending in `*` matches
/// any label with that prefix.
fn labels_end_with(host: &[&str], pattern: &[&str]) -> bool {
    host.len() >= pattern.len()
        && host[host.len() - pattern.len()..]
            .iter()
            .zip(pattern)
            .all(|(h, p)| match p.strip_suffix('*') {
                Some(prefix) => h.starts_with(prefix),
                None => h == p,
            })
}

/// Labels of the public suffix a `.*` pattern stands for: one short alphabetic label
/// ("de", "com"), or two for ccTLD second levels ("co.uk", "com.br").
fn public_suffix_labels(labels: &[&str]) -> Option<usize> {
    let n = labels.len();
    let short =
        |l: &str| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_alphabetic());
    if n >= 3
        && labels[n - 1].len() == 2
        && short(labels[n - 1])
        && SLD_LABELS.contains(&labels[n - 2])
    {
        return Some(2);
    }
    (n >= 2 && short(labels[n - 1])).then_some(1)
}

fn suffix_match(host: &str, pat: &str) -> bool {
    host == pat
        || host
            .strip_suffix(pat)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Approximate registrable domain (eTLD+1) without the full public-suffix list.
pub fn registrable_domain(host: &str) -> &str {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    for shared in SHARED_SUFFIXES {
        if suffix_match(host, shared) && host != *shared {
            return last_labels(host, shared.matches('.').count() + 2);
        }
    }
    let mut labels = host.rsplit('.');
    let (tld, sld, third) = (labels.next(), labels.next(), labels.next());
    let cc_registration = third.is_some()
        && tld.is_some_and(|l| l.len() == 2)
        && sld.is_some_and(|l| SLD_LABELS.contains(&l));
    last_labels(host, if cc_registration { 3 } else { 2 })
}

fn last_labels(host: &str, n: usize) -> &str {
    let mut idx = host.len();
    for _ in 0..n {
        match host[..idx].rfind('.') {
            Some(i) => idx = i,
            None => return host,
        }
    }
    &host[idx + 1..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(r: &str) -> Option<Source> {
        referrer_source(r, "example.com")
    }

    fn name(r: &str) -> String {
        src(r).map(|s| s.source).unwrap_or_default()
    }

    #[test]
    fn google_cctlds() {
        assert_eq!(name("https://www.google.com/"), "Google");
        assert_eq!(name("https://www.google.co.uk/search?q=x"), "Google");
        assert_eq!(name("https://google.de"), "Google");
        assert_eq!(name("https://www.google.com.br/"), "Google");
        assert_eq!(name("https://news.google.com/x"), "Google");
        assert_eq!(
            name("android-app://com.google.android.googlequicksearchbox/"),
            "Google"
        );
        assert_eq!(
            name("https://googleusercontent.com/"),
            "googleusercontent.com"
        );
        assert_eq!(name("https://notgoogle.com/"), "notgoogle.com");
    }

    #[test]
    fn specific_beats_general() {
        assert_eq!(name("https://gemini.google.com/app"), "Google Gemini");
        assert_eq!(name("https://mail.google.com/mail/u/0/"), "Gmail");
        assert_eq!(name("https://mail.yahoo.com/"), "Yahoo! Mail");
        assert_eq!(name("https://search.yahoo.co.jp/"), "Yahoo!");
    }

    #[test]
    fn social_and_others() {
        assert_eq!(name("https://t.co/abc"), "Twitter");
        assert_eq!(name("https://x.com/someone"), "Twitter");
        assert_eq!(name("https://lm.facebook.com/l.php?u=x"), "Facebook");
        assert_eq!(name("https://old.reddit.com/r/rust"), "Reddit");
        assert_eq!(
            name("https://news.ycombinator.com/item?id=1"),
            "Hacker News"
        );
        assert_eq!(name("https://en.wikipedia.org/wiki/X"), "Wikipedia");
        assert_eq!(name("https://chatgpt.com/"), "ChatGPT");
        assert_eq!(name("https://lnkd.in/x"), "LinkedIn");
    }

    #[test]
    fn webmail_ai_and_ads() {
        assert_eq!(
            name("https://deref-gmx.net/mail/client/x/dereferrer/"),
            "GMX"
        );
        assert_eq!(name("https://lightmailer-bs.gmx.net/"), "GMX");
        assert_eq!(name("https://3c-bap.web.de/"), "Web.de");
        assert_eq!(name("https://mail02.orange.fr/"), "Orange Webmail");
        assert_eq!(name("https://www.orange.fr/portail"), "orange.fr");
        assert_eq!(name("https://deref-1und1-02.de/"), "1und1");
        assert_eq!(name("https://email.ionos.co.uk/"), "Ionos");
        assert_eq!(name("http://x.c.yom.mail.yahoo.net/om/api"), "Yahoo! Mail");
        assert_eq!(name("https://perplexity.ai/search"), "Perplexity");
        assert_eq!(name("https://claude.ai/chat/1"), "Claude");
        assert_eq!(name("https://copilot.microsoft.com/"), "Microsoft Copilot");
        assert_eq!(name("https://www.meta.ai/"), "Meta AI");
        assert_eq!(name("https://aolsearch.aol.co.uk/aol/search"), "AOL");
        assert_eq!(name("https://mail.aol.com/"), "AOL Mail");
        let ad = src("https://pagead2.googlesyndication.com/").expect("external");
        assert_eq!(
            (ad.source.as_str(), ad.category),
            ("Google", Some(Category::Ads))
        );
        assert_eq!(
            src("https://www.google.de/").and_then(|s| s.category),
            Some(Category::Search)
        );
        assert_eq!(lookup_host("gmail.com"), None);
    }

    #[test]
    fn unknown_host_kept() {
        let s = src("https://www.Blog.Example.org/posts/1?utm=x#y").expect("external");
        assert_eq!(s.source, "blog.example.org");
        assert_eq!(s.referrer, "blog.example.org/posts/1");
        let s = src("https://t.co/").expect("external");
        assert_eq!(s.referrer, "t.co");
    }

    #[test]
    fn internal_referrers() {
        assert_eq!(src("https://example.com/a"), None);
        assert_eq!(src("https://www.example.com/a"), None);
        // A subdomain of the site is a referrer of its own (Plausible's test "parses
        // subdomain referrer").
        assert_eq!(
            src("https://blog.example.com/a").map(|s| s.source),
            Some("blog.example.com".to_string())
        );
        assert_eq!(
            referrer_source("https://a.example.co.uk/", "a.example.co.uk"),
            None
        );
        // Only http(s) and android-app referrers count; app referrers keep their scheme.
        assert_eq!(src("ftp://wat"), None);
        assert_eq!(src("https:://twitter.com"), None);
        assert_eq!(src("google.com/search"), None);
        let app = src("android-app://some.android.app").expect("external");
        assert_eq!(app.source, "android-app://some.android.app");
        assert_eq!(app.referrer, "android-app://some.android.app");
        assert!(referrer_source("https://other.co.uk/", "example.co.uk").is_some());
        assert!(referrer_source("https://alice.github.io/", "bob.github.io").is_some());
        assert_eq!(src(""), None);
        assert_eq!(src("   "), None);
        assert_eq!(src("http://"), None);
        // Plausible ignores referrers from localhost (development servers).
        assert_eq!(src("http://localhost:3000/x"), None);
        assert_eq!(src("http://LOCALHOST/"), None);
    }

    #[test]
    fn referrer_path_without_trailing_slash() {
        // Plausible's `visit:referrer` is host + path with the trailing slash trimmed.
        let s = src("https://blog.example.org/posts/1/?a=b").expect("external");
        assert_eq!(s.referrer, "blog.example.org/posts/1");
        let s = src("https://blog.example.org//").expect("external");
        assert_eq!(s.referrer, "blog.example.org");
    }

    #[test]
    fn utm_aliases() {
        // Canonical names in any case (Plausible's source tests "known source from
        // RefInspector supplied as downcased / uppercased utm_source by user").
        assert_eq!(canonical_utm_source("google"), "Google");
        assert_eq!(canonical_utm_source("GOOGLE"), "Google");
        assert_eq!(canonical_utm_source("Facebook"), "Facebook");
        assert_eq!(canonical_utm_source("twitter"), "Twitter");
        assert_eq!(canonical_utm_source("linkedin"), "LinkedIn");
        assert_eq!(canonical_utm_source("reddit"), "Reddit");
        assert_eq!(canonical_utm_source("github"), "GitHub");
        assert_eq!(canonical_utm_source("duckduckgo"), "DuckDuckGo");
        assert_eq!(canonical_utm_source("bing"), "Bing");
        assert_eq!(canonical_utm_source("wikipedia"), "Wikipedia");
        assert_eq!(canonical_utm_source("Telegram"), "Telegram");
        assert_eq!(canonical_utm_source("threads"), "Threads");
        assert_eq!(canonical_utm_source("perplexity"), "Perplexity");
        assert_eq!(canonical_utm_source("linktree"), "Linktree");
        // custom_sources.json shorthands (external_controller_test "ig is Instagram",
        // "yt is Youtube", "fb is Facebook").
        assert_eq!(canonical_utm_source("fb"), "Facebook");
        assert_eq!(canonical_utm_source("ig"), "Instagram");
        assert_eq!(canonical_utm_source("yt"), "Youtube");
        assert_eq!(canonical_utm_source("youtube"), "Youtube");
        // Anything else verbatim: hosts and other spellings are not mapped
        // ("utm_source overrides referrer source": betalist; "producthunt is social":
        // producthunt; "utm_source=newsletter is email channel": Newsletter-UK).
        assert_eq!(canonical_utm_source("betalist"), "betalist");
        assert_eq!(canonical_utm_source("producthunt"), "producthunt");
        assert_eq!(canonical_utm_source("Newsletter-UK"), "Newsletter-UK");
        assert_eq!(canonical_utm_source("chatgpt.com"), "chatgpt.com");
        assert_eq!(
            canonical_utm_source("news.ycombinator.com"),
            "news.ycombinator.com"
        );
        assert_eq!(canonical_utm_source("x"), "x");
        assert_eq!(canonical_utm_source("hn"), "hn");
        assert_eq!(canonical_utm_source(""), "");
        // Paid spellings name their network ("Reddit-ads is Reddit", "Google-ads is
        // Google", "utm_source=Adwords is Google paid search", "yt-ads is Youtube paid").
        assert_eq!(canonical_utm_source("adwords"), "Google");
        assert_eq!(canonical_utm_source("Google_Ads"), "Google");
        assert_eq!(canonical_utm_source("Google-ads"), "Google");
        assert_eq!(canonical_utm_source("fb-ads"), "Facebook");
        assert_eq!(canonical_utm_source("Reddit-ads"), "Reddit");
        assert_eq!(canonical_utm_source("yt-ads"), "Youtube");
        assert_eq!(canonical_utm_source("tiktokads"), "TikTok");
        assert!(is_paid_utm_source("AdWords"));
        assert!(is_paid_utm_source("reddit-ads"));
        assert!(!is_paid_utm_source("reddit"));
        assert!(!is_paid_utm_source("fb"));
    }

    /// Referrers of Plausible's tests (external_controller_test "custom source parsing
    /// rules" / "custom channel parsing rules", source_test) and custom_sources.json.
    #[test]
    fn plausible_referrer_names() {
        for (referrer, want) in [
            ("https://ntp.msn.com", "Bing"),
            ("https://ntp.msn.com/edge/ntp?locale=en", "Bing"),
            ("https://temu.com", "temu.com"),
            ("https://linktr.ee", "Linktree"),
            ("https://walmart.com", "walmart.com"),
            ("https://shopify.com", "shopify.com"),
            ("https://steamcommunity.com", "steamcommunity.com"),
            ("https://youtube.com", "Youtube"),
            ("https://vkontakte.ru", "Vkontakte"),
            ("https://vk.com", "Vkontakte"),
            ("https://gemini.google.com", "Google Gemini"),
            ("https://copilot.microsoft.com", "Microsoft Copilot"),
            ("https://copilot.com", "Microsoft Copilot"),
            ("https://perplexity.ai", "Perplexity"),
            ("https://pplx.ai", "Perplexity"),
            ("https://chatgpt.com", "ChatGPT"),
            ("https://chat.openai.com", "ChatGPT"),
            ("https://claude.ai", "Claude"),
            ("https://phind.com", "Phind"),
            ("https://kagi.com", "Kagi"),
            ("https://l.threads.com", "Threads"),
            ("https://threads.net", "Threads"),
            ("https://bsky.app", "Bluesky"),
            ("https://go.bsky.app", "Bluesky"),
            ("https://mastodon.social", "Mastodon"),
            ("https://fosstodon.org", "Mastodon"),
            ("https://cac-excel.officeapps.live.com", "Microsoft 365"),
            ("https://officeapps.live.com", "Microsoft 365"),
            ("https://notofficeapps.live.com", "notofficeapps.live.com"),
            ("https://zu.wikipedia.org", "Wikipedia"),
            ("https://en.m.wikipedia.org", "Wikipedia"),
            ("https://notwikipedia.org", "notwikipedia.org"),
            ("https://search.brave.com", "Brave"),
            ("https://yandex.com.tr", "Yandex"),
            ("https://yandex.kz", "Yandex"),
            ("https://ya.ru", "Yandex"),
            ("https://yandex.eu", "Yandex"),
            ("https://yandex.tm", "Yandex"),
            ("https://discord.com", "Discord"),
            ("https://discordapp.com", "Discord"),
            ("https://canary.discord.com", "Discord"),
            ("https://ptb.discord.com", "Discord"),
            ("https://baidu.com", "Baidu"),
            ("https://t.me", "Telegram"),
            ("https://webk.telegram.org", "Telegram"),
            ("https://sogou.com", "Sogou"),
            ("https://m.sogou.com", "Sogou"),
            ("https://wap.sogou.com", "Sogou"),
            ("https://news.ycombinator.com", "Hacker News"),
            ("https://search.yahoo.com", "Yahoo!"),
            ("https://mail.google.com", "Gmail"),
            ("https://app.slack.com", "Slack"),
            ("https://github.com", "GitHub"),
            ("https://ecosia.org", "Ecosia"),
            ("https://statics.teams.cdn.office.net", "Microsoft Teams"),
            ("android-app://com.reddit.frontpage", "Reddit"),
            (
                "https://www.indiehackers.com/page?query=param#hash",
                "indiehackers.com",
            ),
            ("https://stackoverflow.com/q/1", "StackOverflow"),
            ("https://so.com/", "360.cn"),
            ("https://medium.com/@a/b", "medium.com"),
        ] {
            assert_eq!(name(referrer), want, "{referrer}");
        }
    }

    #[test]
    fn indexed_lookup_matches_the_scan() {
        // Hosts around every pattern (wildcards filled, `.*` with one- and two-label
        // suffixes, under subdomains, cut short, with a label added), the hosts of
        // referer-parser's cases, and lookalikes.
        let mut hosts: Vec<String> = Vec::new();
        for (pat, _, _) in SOURCES {
            let body = pat.strip_suffix(".*").unwrap_or(pat).replace('*', "x7");
            let bare = pat.strip_suffix(".*").unwrap_or(pat).replace('*', "");
            for b in [&body, &bare] {
                for suffix in ["", ".com", ".de", ".co.uk", ".com.br", ".example"] {
                    for prefix in ["", "a.", "mail.", "news.b.", "x-"] {
                        hosts.push(format!("{prefix}{b}{suffix}"));
                    }
                }
                hosts.push(b.split_once('.').map_or("", |(_, rest)| rest).to_string());
                hosts.push(format!("{b}x"));
            }
        }
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/testdata/referer-parser/referer-tests.json");
        if let Ok(text) = std::fs::read_to_string(corpus) {
            for part in text.split("://").skip(1) {
                let host = part.split(['/', '?', '"', ':']).next().unwrap_or("");
                hosts.push(host.to_ascii_lowercase());
            }
        }
        hosts.extend(
            [
                "",
                ".",
                "com",
                "co.uk",
                "google",
                "t.co",
                "x.t.co",
                "localhost",
            ]
            .map(String::from),
        );
        assert!(hosts.len() > 5_000, "{} hosts", hosts.len());
        let mut known = 0;
        for host in &hosts {
            let host = host.strip_prefix("www.").unwrap_or(host);
            let by_scan = lookup_host_by_scan(host);
            assert_eq!(lookup_host(host), by_scan, "{host}");
            known += usize::from(by_scan.is_some());
        }
        assert!(known > 1_000, "{known} of {} hosts known", hosts.len());
    }

    #[test]
    fn registrable() {
        assert_eq!(registrable_domain("a.b.example.com"), "example.com");
        assert_eq!(registrable_domain("a.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("localhost"), "localhost");
        assert_eq!(registrable_domain("x.y.github.io"), "y.github.io");
        assert_eq!(registrable_domain("127.0.0.1"), "127.0.0.1");
    }
}
