//! Acquisition channel (`visit:channel`), following Plausible's GA4-style rules.
//!
//! Rules are tried in order; the first that matches wins:
//! Cross-network, Paid Shopping, Paid Search, Paid Social, Paid Video, Display,
//! Paid Other, Organic Shopping, Organic Social, Organic Video, AI Assistants,
//! Organic Search, Email, Affiliates, Audio, SMS, Mobile Push Notifications, Referral,
//! Direct.

use crate::referrer::{
    Category, canonical_utm_source, is_paid_utm_source, referrer_source, source_category,
};
use crate::url::PageUrl;

/// Every value [`channel`] can return.
pub const CHANNELS: &[&str] = &[
    "Direct",
    "Organic Search",
    "Paid Search",
    "Organic Social",
    "Paid Social",
    "Email",
    "Referral",
    "AI Assistants",
    "Display",
    "Affiliates",
    "Organic Video",
    "Paid Video",
    "Organic Shopping",
    "Paid Shopping",
    "Paid Other",
    "Audio",
    "SMS",
    "Mobile Push Notifications",
    "Cross-network",
];

/// Source value meaning "no referrer and no utm_source".
pub const DIRECT_SOURCE: &str = "Direct / None";

/// Where a visit came from: `visit:source`, `visit:referrer`, `visit:channel`.
#[derive(Debug, Clone, PartialEq)]
pub struct Acquisition {
    pub source: String,
    /// External referrer (host + path), "" for none or internal.
    pub referrer: String,
    /// External referrer host, "" for none.
    pub referrer_host: String,
    pub channel: &'static str,
}

/// Source and channel of a visit from its first page URL and referrer. `utm_source`
/// wins over `?source=`/`?ref=`, which win over the referrer.
pub fn acquisition(page: &PageUrl, referrer: Option<&str>) -> Acquisition {
    let external = referrer
        .filter(|r| !r.is_empty())
        .and_then(|r| referrer_source(r, &page.hostname));
    let tagged = if page.utm_source.is_empty() {
        &page.source_param
    } else {
        &page.utm_source
    };
    let (source, category) = if !tagged.is_empty() {
        let name = canonical_utm_source(tagged);
        let cat = source_category(&name);
        (name, cat)
    } else if let Some(s) = &external {
        (s.source.clone(), s.category)
    } else {
        (DIRECT_SOURCE.to_string(), None)
    };
    let channel = channel_of(
        category,
        source == DIRECT_SOURCE,
        &page.utm_medium,
        &page.utm_source,
        &page.utm_campaign,
        &page.click_id,
    );
    let (referrer, referrer_host) = external.map(|s| (s.referrer, s.host)).unwrap_or_default();
    Acquisition {
        source,
        referrer,
        referrer_host,
        channel,
    }
}

/// Channel for a visit. `source` is the visit's canonical source (see
/// [`crate::referrer`]); `click_id` is the click-id parameter name from the page URL.
pub fn channel(
    source: &str,
    utm_medium: &str,
    utm_source: &str,
    utm_campaign: &str,
    click_id: &str,
) -> &'static str {
    let source = source.trim();
    let is_direct = source.is_empty() || source == DIRECT_SOURCE;
    let cat = if is_direct {
        None
    } else {
        source_category(source)
    };
    channel_of(
        cat,
        is_direct,
        utm_medium,
        utm_source,
        utm_campaign,
        click_id,
    )
}

/// [`channel`] with the source's category already known.
pub fn channel_of(
    cat: Option<Category>,
    is_direct: bool,
    utm_medium: &str,
    utm_source: &str,
    utm_campaign: &str,
    click_id: &str,
) -> &'static str {
    let medium = utm_medium.trim().to_ascii_lowercase();
    let usource = utm_source.trim().to_ascii_lowercase();
    let campaign = utm_campaign.trim().to_ascii_lowercase();
    let paid_medium = is_paid_medium(&medium);
    // An ad campaign's utm_source ("adwords", "fb-ads") is paid whatever the medium.
    let paid = paid_medium || is_paid_utm_source(&usource);
    let shopping = cat == Some(Category::Shopping) || is_shopping_campaign(&campaign);

    if campaign.contains("cross-network") {
        return "Cross-network";
    }
    if shopping && paid_medium {
        return "Paid Shopping";
    }
    if matches!(click_id, "gclid" | "msclkid") || (cat == Some(Category::Search) && paid) {
        return "Paid Search";
    }
    if paid
        && (cat == Some(Category::Social)
            || matches!(click_id, "fbclid" | "ttclid" | "li_fat_id" | "twclid"))
    {
        return "Paid Social";
    }
    if cat == Some(Category::Video) && paid {
        return "Paid Video";
    }
    if matches!(
        medium.as_str(),
        "display" | "banner" | "expandable" | "interstitial" | "cpm"
    ) || cat == Some(Category::Ads)
    {
        return "Display";
    }
    if paid_medium {
        return "Paid Other";
    }
    if shopping {
        return "Organic Shopping";
    }
    if cat == Some(Category::Social)
        || matches!(
            medium.as_str(),
            "social" | "social-network" | "social-media" | "sm" | "social network" | "social media"
        )
    {
        return "Organic Social";
    }
    if cat == Some(Category::Video) || medium.contains("video") {
        return "Organic Video";
    }
    if cat == Some(Category::Ai) {
        return "AI Assistants";
    }
    if cat == Some(Category::Search) || medium == "organic" {
        return "Organic Search";
    }
    if cat == Some(Category::Email) || is_email(&medium) || is_email(&usource) {
        return "Email";
    }
    if medium == "affiliate" || medium == "affiliates" {
        return "Affiliates";
    }
    if medium == "audio" || medium == "podcast" {
        return "Audio";
    }
    if medium == "sms" || usource == "sms" {
        return "SMS";
    }
    if medium.ends_with("push")
        || medium.contains("mobile")
        || medium.contains("notification")
        || usource == "firebase"
    {
        return "Mobile Push Notifications";
    }
    if matches!(medium.as_str(), "referral" | "app" | "link") || !is_direct {
        return "Referral";
    }
    "Direct"
}

/// `^(.*cp.*|ppc|retargeting|paid.*)$`
fn is_paid_medium(m: &str) -> bool {
    m.contains("cp") || m == "ppc" || m == "retargeting" || m.starts_with("paid")
}

/// An e-mail tag anywhere in the value ("email", "newsletter-may", "e-mail_blast").
fn is_email(v: &str) -> bool {
    ["email", "e-mail", "e_mail", "e mail", "newsletter"]
        .iter()
        .any(|t| v.contains(t))
}

/// A shopping campaign: "shopping", or "shop" at the start of the name or after a
/// character other than a letter a-d / f-z ("summer-shop", "eshop"; not "workshop").
fn is_shopping_campaign(campaign: &str) -> bool {
    if campaign.contains("shopping") {
        return true;
    }
    campaign.match_indices("shop").any(|(i, _)| {
        campaign[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c == 'e' || !c.is_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(url: &str) -> PageUrl {
        crate::url::parse_page_url(url, false).expect("valid url")
    }

    #[test]
    fn acquisition_from_referrer_and_tags() {
        let a = acquisition(
            &page("https://example.com/"),
            Some("https://www.google.com/"),
        );
        assert_eq!((a.source.as_str(), a.channel), ("Google", "Organic Search"));
        assert_eq!(a.referrer_host, "google.com");
        // An ad frame on another site: Google by name, Display by kind.
        let a = acquisition(
            &page("https://example.com/"),
            Some("https://tdsf.doubleclick.net/"),
        );
        assert_eq!((a.source.as_str(), a.channel), ("Google", "Display"));
        let a = acquisition(
            &page("https://example.com/?utm_source=newsletter&utm_medium=email"),
            Some("https://www.google.com/"),
        );
        assert_eq!((a.source.as_str(), a.channel), ("newsletter", "Email"));
        assert_eq!(a.referrer, "google.com");
        let a = acquisition(&page("https://example.com/?ref=producthunt"), None);
        assert_eq!(
            (a.source.as_str(), a.channel),
            ("Product Hunt", "Organic Social")
        );
        let a = acquisition(&page("https://example.com/"), Some("https://example.com/x"));
        assert_eq!((a.source.as_str(), a.channel), (DIRECT_SOURCE, "Direct"));
        let a = acquisition(&page("https://example.com/?gclid=x"), None);
        assert_eq!(a.channel, "Paid Search");
        let a = acquisition(
            &page("https://example.com/?li_fat_id=x&utm_medium=paid"),
            None,
        );
        assert_eq!(a.channel, "Paid Social");
    }

    #[test]
    fn direct() {
        assert_eq!(channel(DIRECT_SOURCE, "", "", "", ""), "Direct");
        assert_eq!(channel("", "", "", "", ""), "Direct");
    }

    #[test]
    fn search() {
        assert_eq!(channel("Google", "", "", "", ""), "Organic Search");
        assert_eq!(channel("DuckDuckGo", "", "", "", ""), "Organic Search");
        assert_eq!(channel("Google", "cpc", "google", "", ""), "Paid Search");
        assert_eq!(channel("Google", "", "", "", "gclid"), "Paid Search");
        assert_eq!(channel(DIRECT_SOURCE, "", "", "", "msclkid"), "Paid Search");
        assert_eq!(
            channel("news.example", "organic", "", "", ""),
            "Organic Search"
        );
    }

    #[test]
    fn social() {
        assert_eq!(channel("Twitter", "", "", "", ""), "Organic Social");
        assert_eq!(channel("Facebook", "", "", "", "fbclid"), "Organic Social");
        assert_eq!(
            channel("Facebook", "paid_social", "fb", "", "fbclid"),
            "Paid Social"
        );
        assert_eq!(
            channel("newsletter-x", "paid", "", "", "ttclid"),
            "Paid Social"
        );
        assert_eq!(channel("Hacker News", "", "", "", ""), "Organic Social");
        assert_eq!(channel("foo", "social", "foo", "", ""), "Organic Social");
    }

    #[test]
    fn others() {
        assert_eq!(channel("ChatGPT", "", "", "", ""), "AI Assistants");
        assert_eq!(channel("Gemini", "", "", "", ""), "AI Assistants");
        assert_eq!(channel("Gmail", "", "", "", ""), "Email");
        assert_eq!(channel("weekly", "email", "weekly", "", ""), "Email");
        assert_eq!(channel("YouTube", "cpv", "", "", ""), "Paid Video");
        assert_eq!(channel("ads.example", "display", "", "", ""), "Display");
        assert_eq!(
            channel("partner", "affiliate", "partner", "", ""),
            "Affiliates"
        );
        assert_eq!(channel("pod", "audio", "pod", "", ""), "Audio");
        assert_eq!(channel("sms", "", "sms", "", ""), "SMS");
        assert_eq!(
            channel("x", "", "", "summer cross-network", ""),
            "Cross-network"
        );
        assert_eq!(channel("partner", "ppc", "partner", "", ""), "Paid Other");
        assert_eq!(channel("blog.example.org", "", "", "", ""), "Referral");
        assert_eq!(channel("GitLab", "", "", "", ""), "Referral");
        assert_eq!(channel(DIRECT_SOURCE, "referral", "", "", ""), "Referral");
        assert!(CHANNELS.contains(&channel("a", "b", "c", "d", "e")));
    }

    /// Plausible's channel names and rules that footfall got wrong: "Organic Video"
    /// (not "Video"), the shopping channels, paid `utm_source` spellings, e-mail tags
    /// anywhere in the source or medium, Firebase pushes, and GitHub / Stack Overflow /
    /// Medium as social sources.
    #[test]
    fn plausible_channel_names_and_rules() {
        assert_eq!(channel("YouTube", "", "", "", ""), "Organic Video");
        assert_eq!(channel("foo", "video", "foo", "", ""), "Organic Video");
        assert_eq!(channel("Amazon", "", "", "", ""), "Organic Shopping");
        assert_eq!(channel("Amazon", "cpc", "amazon", "", ""), "Paid Shopping");
        assert_eq!(
            channel("partner", "cpc", "partner", "summer-shop", ""),
            "Paid Shopping"
        );
        assert_eq!(
            channel("partner", "", "partner", "Shopping week", ""),
            "Organic Shopping"
        );
        assert_eq!(
            channel("partner", "", "partner", "workshop", ""),
            "Referral"
        );
        // Paid sources count as paid whatever the medium.
        assert_eq!(channel("Google", "", "adwords", "", ""), "Paid Search");
        assert_eq!(channel("Facebook", "", "fb-ads", "", ""), "Paid Social");
        assert_eq!(channel("YouTube", "", "yt-ads", "", ""), "Paid Video");
        assert_eq!(
            channel("newsletter-weekly", "", "newsletter-weekly", "", ""),
            "Email"
        );
        assert_eq!(channel("acme", "email-blast", "acme", "", ""), "Email");
        assert_eq!(
            channel("firebase", "", "firebase", "", ""),
            "Mobile Push Notifications"
        );
        assert_eq!(channel("GitHub", "", "", "", ""), "Organic Social");
        assert_eq!(channel("Stack Overflow", "", "", "", ""), "Organic Social");
        assert_eq!(channel("Medium", "", "", "", ""), "Organic Social");
        assert_eq!(channel("Microsoft Teams", "", "", "", ""), "Organic Social");
        // Social and video media come before the AI-assistant rule.
        assert_eq!(channel("ChatGPT", "social", "", "", ""), "Organic Social");
        for c in [
            "Organic Video",
            "Paid Shopping",
            "Organic Shopping",
            "Paid Search",
        ] {
            assert!(CHANNELS.contains(&c), "{c}");
        }
        assert!(!CHANNELS.contains(&"Video"));

        let a = acquisition(&page("https://example.com/?utm_source=adwords"), None);
        assert_eq!((a.source.as_str(), a.channel), ("Google", "Paid Search"));
        let a = acquisition(&page("https://example.com/?utm_source=facebook_ads"), None);
        assert_eq!((a.source.as_str(), a.channel), ("Facebook", "Paid Social"));
        let a = acquisition(
            &page("https://example.com/"),
            Some("https://www.amazon.co.uk/gp/x"),
        );
        assert_eq!(
            (a.source.as_str(), a.channel),
            ("Amazon", "Organic Shopping")
        );
        let a = acquisition(
            &page("https://example.com/"),
            Some("https://statics.teams.cdn.office.net/evergreen-assets/"),
        );
        assert_eq!(
            (a.source.as_str(), a.channel),
            ("Microsoft Teams", "Organic Social")
        );
    }
}
