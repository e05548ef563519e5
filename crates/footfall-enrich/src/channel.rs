//! Acquisition channel (`visit:channel`), following Plausible's GA4-style rules.
//!
//! Rules are tried in order; the first that matches wins:
//! Cross-network, Paid Shopping, Paid Search, Paid Social, Paid Video, Display,
//! Paid Other, Organic Shopping, Organic Social, Organic Video, AI Assistants,
//! Organic Search, Email, Affiliates, Audio, SMS, Mobile Push Notifications, Referral,
//! Direct.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::referrer::{Category, canonical_utm_source, is_paid_utm_source, referrer_source};
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
    /// `visit:utm_source` as Plausible stores it: the tag the visit came with
    /// (`utm_source`, else `source`, else `ref`), as sent.
    pub utm_source: String,
    /// `visit:utm_medium` as Plausible stores it: as sent, or on an untagged link
    /// `(gclid)` from Google with a `gclid`, `(msclkid)` from Bing with an `msclkid`
    /// (its `Ingestion.Event.maybe_infer_medium`).
    pub utm_medium: String,
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
    let source = if !tagged.is_empty() {
        canonical_utm_source(tagged)
    } else if let Some(s) = &external {
        s.source.clone()
    } else {
        DIRECT_SOURCE.to_string()
    };
    let is_direct = source == DIRECT_SOURCE;
    let channel = channel_of(
        if is_direct {
            None
        } else {
            channel_category(&source)
        },
        if is_direct { "" } else { &source },
        &page.utm_medium,
        // Plausible keeps the tag a visit came with (`utm_source`, else `source`, else
        // `ref`) as its utm_source, and the channel reads that.
        tagged,
        &page.utm_campaign,
        &page.click_id,
    );
    let utm_medium = match (
        page.utm_medium.is_empty(),
        source.as_str(),
        page.click_id.as_str(),
    ) {
        (true, "Google", "gclid") => "(gclid)".to_string(),
        (true, "Bing", "msclkid") => "(msclkid)".to_string(),
        _ => page.utm_medium.clone(),
    };
    let (referrer, referrer_host) = external.map(|s| (s.referrer, s.host)).unwrap_or_default();
    Acquisition {
        utm_source: tagged.clone(),
        utm_medium,
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
    let source = if source == DIRECT_SOURCE { "" } else { source };
    channel_of(
        channel_category(source),
        source,
        utm_medium,
        utm_source,
        utm_campaign,
        click_id,
    )
}

/// [`channel`] with the source's category ([`channel_category`]) already known.
/// `source` is the visit's source ("" for a direct visit), `utm_source` the tag it
/// came with, both as stored.
pub fn channel_of(
    cat: Option<Category>,
    source: &str,
    utm_medium: &str,
    utm_source: &str,
    utm_campaign: &str,
    click_id: &str,
) -> &'static str {
    let medium = utm_medium.trim().to_ascii_lowercase();
    let usource = utm_source.trim().to_ascii_lowercase();
    let campaign = utm_campaign.trim().to_ascii_lowercase();
    let source = source.trim();
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
    // Click ids count only for their own network's source (Plausible: Google + gclid,
    // Bing + msclkid), and only on an untagged link: Plausible then stores the medium as
    // "(gclid)" / "(msclkid)"; a tagged medium decides by itself (its test "display
    // channel with gclid": utm_medium=display + gclid is Display).
    let click = medium.is_empty()
        && ((click_id == "gclid" && source.eq_ignore_ascii_case("google"))
            || (click_id == "msclkid" && source.eq_ignore_ascii_case("bing")));
    if (cat == Some(Category::Search) && paid) || click {
        return "Paid Search";
    }
    if cat == Some(Category::Social) && paid {
        return "Paid Social";
    }
    if cat == Some(Category::Video) && paid {
        return "Paid Video";
    }
    if matches!(
        medium.as_str(),
        "display" | "banner" | "expandable" | "interstitial" | "cpm"
    ) {
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
    if cat == Some(Category::Search) {
        return "Organic Search";
    }
    if cat == Some(Category::Email) || is_email(&medium) || is_email(&usource) {
        return "Email";
    }
    if medium == "affiliate" {
        return "Affiliates";
    }
    if medium == "audio" {
        return "Audio";
    }
    if medium == "sms" || usource == "sms" {
        return "SMS";
    }
    if medium.ends_with("push")
        || medium.contains("mobile")
        || medium.contains("notification")
        || source.eq_ignore_ascii_case("firebase")
    {
        return "Mobile Push Notifications";
    }
    if matches!(medium.as_str(), "referral" | "app" | "link") || !source.is_empty() {
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

/// Category of a visit's source for its channel, as Plausible decides it
/// (`Acquisition.source_categories`): the source as stored, lowercased, looked up by its
/// whole text in Plausible's own list followed by GA4's source categories. A name is
/// matched, not a host pattern: "Google" and "google" are search, "Outlook.com" is no
/// category (Referral: only Gmail is an e-mail source there), an unknown host only when
/// listed itself ("walmart.com", "bit.ly").
pub fn channel_category(source: &str) -> Option<Category> {
    static MAP: OnceLock<HashMap<&'static str, Category>> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for (list, cat) in [
            (SEARCH_SOURCES, Category::Search),
            (SOCIAL_SOURCES, Category::Social),
            (VIDEO_SOURCES, Category::Video),
            (SHOPPING_SOURCES, Category::Shopping),
            (EMAIL_SOURCES, Category::Email),
            (AI_SOURCES, Category::Ai),
        ] {
            for name in list.split_whitespace() {
                m.insert(name, cat);
            }
        }
        m
    });
    let source = source.trim();
    if source.is_empty() {
        return None;
    }
    let lower = source.to_ascii_lowercase();
    // Multi-word names are kept with `_` for spaces in the lists below.
    if lower.contains(' ') {
        map.get(lower.replace(' ', "_").as_str()).copied()
    } else {
        map.get(lower.as_str()).copied()
    }
}

// Plausible's additions (acquisition.ex `@custom_source_categories` and the names its
// acquisition tests expect) come first in each list; the rest is GA4's source
// categories (support.google.com/analytics/answer/9756891), lowercase, `_` for a space.
const SEARCH_SOURCES: &str = "
yahoo! ecosia brave sogou kagi
360.cn alice aol ar.search.yahoo.com ask at.search.yahoo.com au.search.yahoo.com auone avg
babylon baidu biglobe biglobe.co.jp biglobe.ne.jp bing br.search.yahoo.com
ca.search.yahoo.com centrum.cz ch.search.yahoo.com cl.search.yahoo.com cn.bing.com cnn
co.search.yahoo.com comcast conduit daum daum.net de.search.yahoo.com dk.search.yahoo.com
dogpile dogpile.com duckduckgo ecosia.org email.seznam.cz eniro es.search.yahoo.com
espanol.search.yahoo.com exalead.com excite.com fi.search.yahoo.com firmy.cz
fr.search.yahoo.com globo go.mail.ru google google-play hk.search.yahoo.com
id.search.yahoo.com in.search.yahoo.com incredimail it.search.yahoo.com kvasir
lens.google.com lite.qwant.com lycos m.baidu.com m.naver.com m.search.naver.com m.sogou.com
mail.rambler.ru mail.yandex.ru malaysia.search.yahoo.com msn msn.com mx.search.yahoo.com
najdi naver naver.com news.google.com nl.search.yahoo.com no.search.yahoo.com ntp.msn.com
nz.search.yahoo.com onet onet.pl pe.search.yahoo.com ph.search.yahoo.com pl.search.yahoo.com
play.google.com qwant qwant.com rakuten rakuten.co.jp rambler rambler.ru se.search.yahoo.com
search-results search.aol.co.uk search.aol.com search.google.com search.smt.docomo.ne.jp
search.ukr.net secureurl.ukr.net seznam seznam.cz sg.search.yahoo.com so.com sogou.com
sp-web.search.auone.jp startsiden startsiden.no suche.aol.de terra th.search.yahoo.com
tr.search.yahoo.com tut.by tw.search.yahoo.com uk.search.yahoo.com ukr us.search.yahoo.com
virgilio vn.search.yahoo.com wap.sogou.com webmaster.yandex.ru websearch.rakuten.co.jp yahoo
yahoo.co.jp yahoo.com yandex yandex.by yandex.com yandex.com.tr yandex.fr yandex.kz yandex.ru
yandex.ua yandex.uz zen.yandex.ru
";

const SOCIAL_SOURCES: &str = "
hacker_news telegram slack producthunt github steamcommunity.com statics.teams.cdn.office.net
vkontakte threads discord microsoft_teams bluesky mastodon x_(twitter)
43things 43things.com 51.com 5ch.net hatena imageshack academia.edu activerain activerain.com
activeworlds activeworlds.com addthis addthis.com airg.ca allnurses.com allrecipes.com
alumniclass alumniclass.com ameba.jp ameblo.jp americantowns americantowns.com amp.reddit.com
ancestry.com anobii anobii.com answerbag answerbag.com answers.yahoo.com aolanswers
aolanswers.com apps.facebook.com ar.pinterest.com artstation.com askubuntu askubuntu.com
asmallworld.com athlinks athlinks.com away.vk.com awe.sm b.hatena.ne.jp baby-gaga
baby-gaga.com babyblog.ru badoo badoo.com bebo bebo.com beforeitsnews beforeitsnews.com
bharatstudent bharatstudent.com biip.no biswap.org bit.ly blackcareernetwork.com blackplanet
blackplanet.com blip.fm blog.com blog.feedspot.com blog.goo.ne.jp blog.naver.com
blog.yahoo.co.jp blogg.no bloggang.com blogger blogger.com blogher blogher.com bloglines
bloglines.com blogs.com blogsome blogsome.com blogspot blogspot.com blogster blogster.com
blurtit blurtit.com bookmarks.yahoo.co.jp bookmarks.yahoo.com br.pinterest.com brightkite
brightkite.com brizzly brizzly.com business.facebook.com buzzfeed buzzfeed.com buzznet
buzznet.com cafe.naver.com cafemom cafemom.com camospace camospace.com canalblog.com care.com
care2 care2.com caringbridge.org catster catster.com cbnt.io cellufun cellufun.com
centerblog.net chat.zalo.me chegg.com chicagonow chicagonow.com chiebukuro.yahoo.co.jp
classmates classmates.com classquest classquest.com co.pinterest.com cocolog-nifty
cocolog-nifty.com copainsdavant.linternaute.com couchsurfing.org cozycot cozycot.com cross.tv
crunchyroll crunchyroll.com cyworld cyworld.com cz.pinterest.com d.hatena.ne.jp
dailystrength.org deluxe.com deviantart deviantart.com dianping dianping.com digg digg.com
diigo diigo.com discover.hubpages.com disqus disqus.com dogster dogster.com dol2day
dol2day.com doostang doostang.com dopplr dopplr.com douban douban.com draft.blogger.com
draugiem.lv drugs-forum drugs-forum.com dzone dzone.com edublogs.org elftown elftown.com
epicurious.com everforo.com exblog.jp extole extole.com facebook facebook.com faceparty
faceparty.com fandom.com fanpop fanpop.com fark fark.com fb fb.me fc2 fc2.com feedspot
feministing feministing.com filmaffinity filmaffinity.com flickr flickr.com flipboard
flipboard.com folkdirect folkdirect.com foodservice foodservice.com forums.androidcentral.com
forums.crackberry.com forums.imore.com forums.nexopia.com forums.webosnation.com
forums.wpcentral.com fotki fotki.com fotolog fotolog.com foursquare foursquare.com
free.facebook.com friendfeed friendfeed.com fruehstueckstreff.org fubar fubar.com gaiaonline
gaiaonline.com gamerdna gamerdna.com gather.com geni.com getpocket.com glassboard
glassboard.com glassdoor glassdoor.com godtube godtube.com goldenline.pl goldstar
goldstar.com goo.gl gooblog goodreads goodreads.com google+ googlegroups.com googleplus
govloop govloop.com gowalla gowalla.com gree.jp groups.google.com gulli.com gutefrage.net
habbo habbo.com hi5 hi5.com hootsuite hootsuite.com houzz houzz.com hoverspot hoverspot.com
hr.com hu.pinterest.com hubculture hubculture.com hubpages.com hyves.net hyves.nl ibibo
ibibo.com id.pinterest.com identi.ca ig imageshack.com imageshack.us imvu imvu.com
in.pinterest.com insanejournal insanejournal.com instagram instagram.com instapaper
instapaper.com internations.org interpals.net intherooms intherooms.com irc-galleria.net
is.gd italki italki.com jammerdirect jammerdirect.com jappy.com jappy.de kaboodle.com kakao
kakao.com kakaocorp.com kaneva kaneva.com kin.naver.com l.facebook.com l.instagram.com
l.messenger.com last.fm librarything librarything.com lifestream.aol.com line line.me
linkedin linkedin.com listal listal.com listography listography.com livedoor.com
livedoorblog livejournal livejournal.com lm.facebook.com lnkd.in m.blog.naver.com
m.cafe.naver.com m.facebook.com m.kin.naver.com m.vk.com m.yelp.com mbga.jp medium.com
meetin.org meetup meetup.com meinvz.net meneame.net menuism.com messages.google.com
messages.yahoo.co.jp messenger messenger.com mix.com mixi.jp mobile.facebook.com mocospace
mocospace.com mouthshut mouthshut.com movabletype movabletype.com mubi mubi.com
my.opera.com myanimelist.net myheritage myheritage.com mylife mylife.com mymodernmet
mymodernmet.com myspace myspace.com netvibes netvibes.com news.ycombinator.com newsshowcase
nexopia ngopost.org niconico nicovideo.jp nightlifelink nightlifelink.com ning ning.com
nl.pinterest.com odnoklassniki.ru odnoklassniki.ua okwave.jp old.reddit.com oneworldgroup.org
onstartups onstartups.com opendiary opendiary.com oshiete.goo.ne.jp out.reddit.com
over-blog.com overblog.com paper.li partyflock.nl photobucket photobucket.com pinboard
pinboard.in pingsta pingsta.com pinterest pinterest.at pinterest.ca pinterest.ch pinterest.cl
pinterest.co.kr pinterest.co.uk pinterest.com pinterest.com.au pinterest.com.mx pinterest.de
pinterest.es pinterest.fr pinterest.it pinterest.jp pinterest.nz pinterest.ph pinterest.pt
pinterest.ru pinterest.se pixiv.net pl.pinterest.com playahead.se plurk plurk.com
plus.google.com plus.url.google.com pocket.co posterous posterous.com pro.homeadvisor.com
pulse.yahoo.com qapacity qapacity.com quechup quechup.com quora quora.com qzone.qq.com
ravelry ravelry.com reddit reddit.com redux redux.com renren renren.com researchgate.net
reunion reunion.com reverbnation reverbnation.com rtl.de ryze ryze.com salespider
salespider.com scoop.it screenrant screenrant.com scribd scribd.com scvngr scvngr.com
secondlife secondlife.com serverfault serverfault.com shareit sharethis sharethis.com
shvoong.com sites.google.com skype skyrock skyrock.com slashdot.org slideshare.net
smartnews.com snapchat snapchat.com social sociallife.com.br socialvibe socialvibe.com
spaces.live.com spoke spoke.com spruz spruz.com ssense.com stackapps stackapps.com
stackexchange stackexchange.com stackoverflow stackoverflow.com stardoll.com stickam
stickam.com studivz.net suomi24.fi superuser superuser.com sweeva sweeva.com t.co t.me tagged
tagged.com taggedmail taggedmail.com talkbiznow talkbiznow.com taringa.net techmeme
techmeme.com tencent tencent.com tiktok tiktok.com tinyurl tinyurl.com toolbox toolbox.com
touch.facebook.com tr.pinterest.com travellerspoint travellerspoint.com tripadvisor
tripadvisor.com trombi trombi.com trustpilot tudou tudou.com tuenti tuenti.com tumblr
tumblr.com tweetdeck tweetdeck.com twitter twitter.com twoo.com typepad typepad.com
unblog.fr urbanspoon.com ushareit.com ushi.cn vampirefreaks vampirefreaks.com vampirerave
vampirerave.com vg.no video.ibm.com vk.com vkontakte.ru wakoopa wakoopa.com wattpad
wattpad.com web.facebook.com web.skype.com webshots webshots.com wechat wechat.com weebly
weebly.com weibo weibo.com wer-weiss-was.de weread weread.com whatsapp whatsapp.com
wiki.answers.com wikihow.com wikitravel.org woot.com wordpress wordpress.com wordpress.org
xanga xanga.com xing xing.com yahoo-mbga.jp yammer yammer.com yelp yelp.co.uk yelp.com
youroom.in za.pinterest.com zalo zoo.gr zooppa zooppa.com
";

const VIDEO_SOURCES: &str = "
blog.twitch.tv crackle crackle.com curiositystream curiositystream.com d.tube dailymotion
dailymotion.com dashboard.twitch.tv disneyplus disneyplus.com fast.wistia.net help.hulu.com
help.netflix.com hulu hulu.com id.twitch.tv iq.com iqiyi iqiyi.com jobs.netflix.com
justin.tv m.twitch.tv m.youtube.com music.youtube.com netflix netflix.com player.twitch.tv
player.vimeo.com ted ted.com twitch twitch.tv utreon utreon.com veoh veoh.com
viadeo.journaldunet.com vimeo vimeo.com wistia wistia.com youku youku.com youtube
youtube.com
";

const SHOPPING_SOURCES: &str = "
temu.com
google_shopping igshopping aax-us-east.amazon-adsystem.com aax.amazon-adsystem.com alibaba
alibaba.com amazon amazon.co.uk amazon.com apps.shopify.com checkout.shopify.com
checkout.stripe.com cr.shopping.naver.com cr2.shopping.naver.com ebay ebay.co.uk ebay.com
ebay.com.au ebay.de etsy etsy.com m.alibaba.com m.shopping.naver.com mercadolibre
mercadolibre.com mercadolibre.com.ar mercadolibre.com.mx message.alibaba.com
msearch.shopping.naver.com nl.shopping.net no.shopping.net offer.alibaba.com one.walmart.com
order.shopping.yahoo.co.jp partners.shopify.com s3.amazonaws.com se.shopping.net shop.app
shopify shopify.com shopping.naver.com shopping.yahoo.co.jp shopping.yahoo.com shopzilla
shopzilla.com simplycodes.com store.shopping.yahoo.co.jp stripe stripe.com uk.shopping.net
walmart walmart.com
";

const EMAIL_SOURCES: &str = "gmail";

const AI_SOURCES: &str = "
chatgpt chatgpt.com claude phind deepseek copilot microsoft_copilot grok google_gemini
perplexity
";

#[cfg(test)]
mod tests {
    use super::*;

    fn page(url: &str) -> PageUrl {
        crate::url::parse_page_url(url, false).expect("valid url")
    }

    fn acq(url: &str, referrer: &str) -> (String, &'static str) {
        let a = acquisition(&page(url), Some(referrer).filter(|r| !r.is_empty()));
        (a.source, a.channel)
    }

    /// `utm_source` / `utm_medium` as Plausible's Ingestion.Event stores them: the tag
    /// (`utm_source`, else `source`, else `ref`) as sent; the medium inferred from a click
    /// id only for its own network's source on an untagged link (maybe_infer_medium).
    #[test]
    fn stored_utm_source_and_medium_as_plausible() {
        let utm = |url: &str, referrer: &str| {
            let a = acquisition(&page(url), Some(referrer).filter(|r| !r.is_empty()));
            (a.utm_source, a.utm_medium)
        };
        let pair = |s: &str, m: &str| (s.to_string(), m.to_string());
        let cases = [
            (
                "https://x.com/?ref=producthunt",
                "",
                pair("producthunt", ""),
            ),
            (
                "https://x.com/?source=Google-ads",
                "",
                pair("Google-ads", ""),
            ),
            (
                "https://x.com/?utm_source=a&source=b&ref=c",
                "",
                pair("a", ""),
            ),
            (
                "https://x.com/?gclid=1",
                "https://www.google.com/",
                pair("", "(gclid)"),
            ),
            (
                "https://x.com/?utm_source=google&gclid=1",
                "",
                pair("google", "(gclid)"),
            ),
            (
                "https://x.com/?gclid=1&utm_medium=cpc",
                "https://google.com/",
                pair("", "cpc"),
            ),
            (
                "https://x.com/?msclkid=1",
                "https://www.bing.com/",
                pair("", "(msclkid)"),
            ),
            (
                "https://x.com/?gclid=1",
                "https://www.bing.com/",
                pair("", ""),
            ),
            (
                "https://x.com/?gclid=1",
                "https://duckduckgo.com/",
                pair("", ""),
            ),
            ("https://x.com/?gclid=1", "", pair("", "")),
        ];
        for (url, referrer, want) in cases {
            assert_eq!(utm(url, referrer), want, "{url} from {referrer:?}");
        }
    }

    #[test]
    fn acquisition_from_referrer_and_tags() {
        let a = acquisition(
            &page("https://example.com/"),
            Some("https://www.google.com/"),
        );
        assert_eq!((a.source.as_str(), a.channel), ("Google", "Organic Search"));
        assert_eq!(a.referrer_host, "google.com");
        let a = acquisition(
            &page("https://example.com/?utm_source=newsletter&utm_medium=email"),
            Some("https://www.google.com/"),
        );
        assert_eq!((a.source.as_str(), a.channel), ("newsletter", "Email"));
        assert_eq!(a.referrer, "google.com");
        let a = acquisition(&page("https://example.com/"), Some("https://example.com/x"));
        assert_eq!((a.source.as_str(), a.channel), (DIRECT_SOURCE, "Direct"));
    }

    #[test]
    fn direct() {
        assert_eq!(channel(DIRECT_SOURCE, "", "", "", ""), "Direct");
        assert_eq!(channel("", "", "", "", ""), "Direct");
    }

    /// Plausible's acquisition_test.exs static cases (source, utm_medium,
    /// utm_campaign, utm_source, click id -> channel), footfall's names where they
    /// differ by DESIGN ("Twitter" for "X (Twitter)").
    #[test]
    fn plausible_acquisition_static_cases() {
        let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
            ("", "", "", "", "", "Direct"),
            ("", "", "cross-network", "", "", "Cross-network"),
            ("", "paid", "shopping", "", "", "Paid Shopping"),
            ("shopify.com", "paid", "", "", "", "Paid Shopping"),
            ("shopify", "paid", "", "shopify", "", "Paid Shopping"),
            ("DuckDuckGo", "paid", "", "", "", "Paid Search"),
            ("Google", "", "", "", "gclid", "Paid Search"),
            ("DuckDuckGo", "", "", "", "gclid", "Organic Search"),
            ("Bing", "", "", "", "msclkid", "Paid Search"),
            ("DuckDuckGo", "", "", "", "msclkid", "Organic Search"),
            ("google", "paid", "", "google", "", "Paid Search"),
            ("TikTok", "paid", "", "", "", "Paid Social"),
            ("tiktok", "paid", "", "tiktok", "", "Paid Social"),
            ("Youtube", "paid", "", "", "", "Paid Video"),
            ("youtube", "paid", "", "youtube", "", "Paid Video"),
            ("", "banner", "", "", "", "Display"),
            ("", "cpc", "", "", "", "Paid Other"),
            ("walmart.com", "", "", "", "", "Organic Shopping"),
            ("walmart", "", "", "walmart", "", "Organic Shopping"),
            ("", "", "shop", "", "", "Organic Shopping"),
            ("Facebook", "", "", "", "", "Organic Social"),
            ("Twitter", "", "", "twitter", "", "Organic Social"),
            ("X (Twitter)", "", "", "twitter", "", "Organic Social"),
            ("", "social", "", "", "", "Organic Social"),
            ("Vimeo", "", "", "", "", "Organic Video"),
            ("vimeo", "", "", "vimeo", "", "Organic Video"),
            ("", "video", "", "", "", "Organic Video"),
            ("DuckDuckGo", "", "", "", "", "Organic Search"),
            ("duckduckgo", "", "", "duckduckgo", "", "Organic Search"),
            ("", "referral", "", "", "", "Referral"),
            ("email", "", "", "email", "", "Email"),
            ("", "email", "", "", "", "Email"),
            ("", "affiliate", "", "", "", "Affiliates"),
            ("", "audio", "", "", "", "Audio"),
            ("sms", "", "", "sms", "", "SMS"),
            ("", "sms", "", "", "", "SMS"),
            ("", "app-push", "", "", "", "Mobile Push Notifications"),
            (
                "",
                "example-mobile",
                "",
                "",
                "",
                "Mobile Push Notifications",
            ),
            ("othersite.com", "", "", "", "", "Referral"),
            ("Threads", "", "", "threads", "", "Organic Social"),
            ("Instagram", "", "", "ig", "", "Organic Social"),
            ("Youtube", "", "", "yt", "", "Organic Video"),
            ("Youtube", "", "", "yt-ads", "", "Paid Video"),
            ("Facebook", "", "", "fb", "", "Organic Social"),
            ("Facebook", "", "", "fb-ads", "", "Paid Social"),
            ("Facebook", "", "", "fbad", "", "Paid Social"),
            ("Facebook", "", "", "facebook-ads", "", "Paid Social"),
            ("Reddit", "", "", "Reddit-ads", "", "Paid Social"),
            ("Google", "", "", "google_ads", "", "Paid Search"),
            ("Google", "", "", "Google-ads", "", "Paid Search"),
            ("Google", "", "", "Adwords", "", "Paid Search"),
            ("Twitter", "", "", "twitter-ads", "", "Paid Social"),
            ("Reddit", "", "", "", "", "Organic Social"),
            ("Perplexity", "", "", "", "", "AI Assistants"),
            ("Microsoft Teams", "", "", "", "", "Organic Social"),
            ("Wikipedia", "", "", "", "", "Referral"),
            ("Bing", "", "", "", "", "Organic Search"),
            ("Brave", "", "", "", "", "Organic Search"),
            ("Yandex", "", "", "", "", "Organic Search"),
            ("Discord", "", "", "", "", "Organic Social"),
            ("Baidu", "", "", "", "", "Organic Search"),
            ("Telegram", "", "", "", "", "Organic Social"),
            ("Sogou", "", "", "", "", "Organic Search"),
            ("Linktree", "", "", "", "", "Referral"),
            ("Linktree", "", "", "linktree", "", "Referral"),
            ("Hacker News", "", "", "", "", "Organic Social"),
            ("Yahoo!", "", "", "", "", "Organic Search"),
            ("Gmail", "", "", "", "", "Email"),
            ("Newsletter-UK", "", "", "Newsletter-UK", "", "Email"),
            ("temu.com", "", "", "", "", "Organic Shopping"),
            ("Telegram", "", "", "Telegram", "", "Organic Social"),
            ("Bluesky", "", "", "", "", "Organic Social"),
            ("Mastodon", "", "", "", "", "Organic Social"),
            ("Google Gemini", "", "", "", "", "AI Assistants"),
            ("ChatGPT", "", "", "", "", "AI Assistants"),
            ("Claude", "", "", "", "", "AI Assistants"),
            ("Phind", "", "", "", "", "AI Assistants"),
            ("DeepSeek", "", "", "", "", "AI Assistants"),
            ("Microsoft Copilot", "", "", "", "", "AI Assistants"),
            ("Grok", "", "", "", "", "AI Assistants"),
            ("Slack", "", "", "", "", "Organic Social"),
            ("producthunt", "", "", "", "", "Organic Social"),
            ("GitHub", "", "", "", "", "Organic Social"),
            ("steamcommunity.com", "", "", "", "", "Organic Social"),
            ("Vkontakte", "", "", "", "", "Organic Social"),
            ("Threads", "", "", "", "", "Organic Social"),
            ("Ecosia", "", "", "", "", "Organic Search"),
            ("Kagi", "", "", "", "", "Organic Search"),
            ("Microsoft 365", "", "", "", "", "Referral"),
            ("Google", "display", "", "", "123identifier", "Display"),
        ];
        for &(source, medium, campaign, usource, click, want) in cases {
            assert_eq!(
                channel(source, medium, usource, campaign, click),
                want,
                "{source:?} medium={medium:?} campaign={campaign:?} utm_source={usource:?} click={click:?}"
            );
            assert!(CHANNELS.contains(&want));
        }
    }

    /// Rules footfall had and Plausible does not: click ids only count for their own
    /// network's source, fbclid & co. make nothing paid, ad-frame referrers are their
    /// network (Google: search), "affiliates" / "podcast" / "organic" are no channel of
    /// their own, and webmail other than Gmail has no e-mail category.
    #[test]
    fn plausible_rules_footfall_differed_on() {
        assert_eq!(channel(DIRECT_SOURCE, "", "", "", "gclid"), "Direct");
        assert_eq!(channel(DIRECT_SOURCE, "", "", "", "msclkid"), "Direct");
        assert_eq!(channel("Bing", "", "", "", "gclid"), "Organic Search");
        assert_eq!(channel("Facebook", "", "", "", "fbclid"), "Organic Social");
        assert_eq!(channel("news-x", "paid", "", "", "ttclid"), "Paid Other");
        assert_eq!(channel("partner", "affiliates", "", "", ""), "Referral");
        assert_eq!(channel("pod", "podcast", "", "", ""), "Referral");
        assert_eq!(channel("news.example", "organic", "", "", ""), "Referral");
        assert_eq!(channel("Outlook.com", "", "", "", ""), "Referral");
        assert_eq!(channel("Yahoo! Mail", "", "", "", ""), "Referral");
        assert_eq!(
            channel("firebase", "", "firebase", "", ""),
            "Mobile Push Notifications"
        );
        assert_eq!(
            channel("partner", "", "partner", "workshop", ""),
            "Referral"
        );
        assert_eq!(
            channel("partner", "cpc", "partner", "summer-shop", ""),
            "Paid Shopping"
        );
        assert_eq!(channel("ChatGPT", "social", "", "", ""), "Organic Social");
        assert_eq!(
            channel("chatgpt.com", "", "chatgpt.com", "", ""),
            "AI Assistants"
        );
        assert!(!CHANNELS.contains(&"Video"));
    }

    /// Page views as Plausible's external_controller_test sends them ("acquisition
    /// channel tests", "custom source parsing rules", "custom channel parsing rules").
    #[test]
    fn plausible_page_views() {
        let u = "http://example.com/";
        for (url, referrer, source, channel) in [
            (
                "http://example.com/?utm_campaign=cross-network",
                "",
                DIRECT_SOURCE,
                "Cross-network",
            ),
            (
                "http://example.com/?utm_campaign=shopping&utm_medium=paid",
                "",
                DIRECT_SOURCE,
                "Paid Shopping",
            ),
            (
                "http://example.com/?utm_medium=paid",
                "https://shopify.com",
                "shopify.com",
                "Paid Shopping",
            ),
            (
                "http://example.com/?utm_source=shopify&utm_medium=paid",
                "",
                "shopify",
                "Paid Shopping",
            ),
            (
                "http://example.com/?utm_medium=paid",
                "https://duckduckgo.com",
                "DuckDuckGo",
                "Paid Search",
            ),
            (
                "http://example.com/?gclid=123identifier",
                "https://google.com",
                "Google",
                "Paid Search",
            ),
            (
                "http://example.com/?gclid=123identifier",
                "https://duckduckgo.com",
                "DuckDuckGo",
                "Organic Search",
            ),
            (
                "http://example.com/?msclkid=123identifier",
                "https://bing.com",
                "Bing",
                "Paid Search",
            ),
            (
                "http://example.com/?utm_source=google&utm_medium=paid",
                "",
                "Google",
                "Paid Search",
            ),
            (
                "http://example.com/?utm_medium=paid",
                "https://tiktok.com",
                "TikTok",
                "Paid Social",
            ),
            (
                "http://example.com/?utm_source=tiktok&utm_medium=paid",
                "",
                "TikTok",
                "Paid Social",
            ),
            (
                "http://example.com/?utm_medium=paid",
                "https://youtube.com",
                "Youtube",
                "Paid Video",
            ),
            (
                "http://example.com/?utm_source=youtube&utm_medium=paid",
                "",
                "Youtube",
                "Paid Video",
            ),
            (
                "http://example.com/?utm_medium=display&utm_source=google&gclid=123identifier",
                "",
                "Google",
                "Display",
            ),
            (u, "https://walmart.com", "walmart.com", "Organic Shopping"),
            (
                "http://example.com/?utm_source=walmart",
                "",
                "walmart",
                "Organic Shopping",
            ),
            (
                "http://example.com/?utm_campaign=shop",
                "",
                DIRECT_SOURCE,
                "Organic Shopping",
            ),
            (u, "http://facebook.com", "Facebook", "Organic Social"),
            (
                "http://example.com/?utm_source=twitter",
                "",
                "Twitter",
                "Organic Social",
            ),
            (u, "https://vimeo.com", "Vimeo", "Organic Video"),
            (
                "http://example.com/?utm_source=vimeo",
                "",
                "Vimeo",
                "Organic Video",
            ),
            (u, "http://duckduckgo.com", "DuckDuckGo", "Organic Search"),
            (
                "http://example.com/?utm_source=duckduckgo",
                "",
                "DuckDuckGo",
                "Organic Search",
            ),
            ("http://example.com/?utm_source=email", "", "email", "Email"),
            ("http://example.com/?utm_source=sms", "", "sms", "SMS"),
            (u, "https://othersite.com", "othersite.com", "Referral"),
            (
                "http://example.com/?utm_source=threads",
                "",
                "Threads",
                "Organic Social",
            ),
            (
                "http://example.com/?utm_source=ig",
                "",
                "Instagram",
                "Organic Social",
            ),
            (
                "http://example.com/?utm_source=yt",
                "",
                "Youtube",
                "Organic Video",
            ),
            (
                "http://example.com/?utm_source=yt-ads",
                "",
                "Youtube",
                "Paid Video",
            ),
            (
                "http://example.com/?utm_source=fb-ads",
                "",
                "Facebook",
                "Paid Social",
            ),
            (
                "http://example.com/?utm_source=Reddit-ads",
                "",
                "Reddit",
                "Paid Social",
            ),
            (
                "http://example.com/?utm_source=google_ads",
                "",
                "Google",
                "Paid Search",
            ),
            // The tag may come as ?source= ("Google-ads is Google").
            (
                "http://example.com/?source=Google-ads",
                "",
                "Google",
                "Paid Search",
            ),
            (
                "http://example.com/?utm_source=Adwords",
                "",
                "Google",
                "Paid Search",
            ),
            (
                "http://example.com/?utm_source=twitter-ads",
                "",
                "Twitter",
                "Paid Social",
            ),
            (
                "http://example.com/?utm_source=perplexity",
                "",
                "Perplexity",
                "AI Assistants",
            ),
            (
                "http://example.com/?utm_source=linktree",
                "",
                "Linktree",
                "Referral",
            ),
            (
                "http://example.com/?utm_source=Newsletter-UK",
                "",
                "Newsletter-UK",
                "Email",
            ),
            (
                "http://example.com/?utm_source=Telegram",
                "",
                "Telegram",
                "Organic Social",
            ),
            (
                "http://example.com/?ref=producthunt",
                "",
                "producthunt",
                "Organic Social",
            ),
            (
                "http://example.com/?utm_source=chatgpt.com",
                "",
                "chatgpt.com",
                "AI Assistants",
            ),
            (
                u,
                "android-app://com.reddit.frontpage",
                "Reddit",
                "Organic Social",
            ),
            (u, "https://perplexity.ai", "Perplexity", "AI Assistants"),
            (u, "https://pplx.ai", "Perplexity", "AI Assistants"),
            (
                u,
                "https://statics.teams.cdn.office.net",
                "Microsoft Teams",
                "Organic Social",
            ),
            (u, "https://en.wikipedia.org", "Wikipedia", "Referral"),
            (u, "https://ntp.msn.com", "Bing", "Organic Search"),
            (u, "https://search.brave.com", "Brave", "Organic Search"),
            (u, "https://yandex.com.tr", "Yandex", "Organic Search"),
            (u, "https://ya.ru", "Yandex", "Organic Search"),
            (u, "https://discord.com", "Discord", "Organic Social"),
            (u, "https://ptb.discord.com", "Discord", "Organic Social"),
            (u, "https://baidu.com", "Baidu", "Organic Search"),
            (u, "https://t.me", "Telegram", "Organic Social"),
            (u, "https://webk.telegram.org", "Telegram", "Organic Social"),
            (u, "https://m.sogou.com", "Sogou", "Organic Search"),
            (u, "https://linktr.ee", "Linktree", "Referral"),
            (
                u,
                "https://news.ycombinator.com",
                "Hacker News",
                "Organic Social",
            ),
            (u, "https://search.yahoo.com", "Yahoo!", "Organic Search"),
            (u, "https://mail.google.com", "Gmail", "Email"),
            (u, "https://temu.com", "temu.com", "Organic Shopping"),
            (u, "https://app.slack.com", "Slack", "Organic Social"),
            (u, "https://github.com", "GitHub", "Organic Social"),
            (
                u,
                "https://steamcommunity.com",
                "steamcommunity.com",
                "Organic Social",
            ),
            (u, "https://vkontakte.ru", "Vkontakte", "Organic Social"),
            (u, "https://threads.net", "Threads", "Organic Social"),
            (u, "https://ecosia.org", "Ecosia", "Organic Search"),
            (u, "https://bsky.app", "Bluesky", "Organic Social"),
            (u, "https://fosstodon.org", "Mastodon", "Organic Social"),
            (
                u,
                "https://gemini.google.com",
                "Google Gemini",
                "AI Assistants",
            ),
            (u, "https://chatgpt.com", "ChatGPT", "AI Assistants"),
            (u, "https://chat.openai.com", "ChatGPT", "AI Assistants"),
            (u, "https://claude.ai", "Claude", "AI Assistants"),
            (u, "https://phind.com", "Phind", "AI Assistants"),
            (
                u,
                "https://copilot.microsoft.com",
                "Microsoft Copilot",
                "AI Assistants",
            ),
            (
                u,
                "https://copilot.com",
                "Microsoft Copilot",
                "AI Assistants",
            ),
            (u, "https://x.com", "Twitter", "Organic Social"),
            (u, "https://l.threads.com", "Threads", "Organic Social"),
            (u, "https://kagi.com", "Kagi", "Organic Search"),
            (
                u,
                "https://cac-excel.officeapps.live.com",
                "Microsoft 365",
                "Referral",
            ),
            // An ad frame is its network's source (RefInspector's paid Google).
            (
                u,
                "https://tdsf.doubleclick.net/",
                "Google",
                "Organic Search",
            ),
            (
                u,
                "https://www.amazon.co.uk/gp/x",
                "amazon.co.uk",
                "Organic Shopping",
            ),
            (
                u,
                "https://outlook.live.com/mail/0/",
                "Outlook.com",
                "Referral",
            ),
            (u, "https://bit.ly/x", "bit.ly", "Organic Social"),
            (u, "https://m.youtube.com/watch", "Youtube", "Organic Video"),
        ] {
            assert_eq!(
                acq(url, referrer),
                (source.to_string(), channel),
                "{url} {referrer}"
            );
        }
    }
}
