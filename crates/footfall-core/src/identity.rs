//! Visitor identity: client-given ids and the cookieless daily-salted hash (DESIGN §3).

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

/// A 16-byte random salt valid for one UTC day.
pub type Salt = [u8; 16];

/// Fixed, public key for hashing client-given ids: those ids are not personal data we
/// must hide, we only need a stable 64-bit value per (site, id).
const CLIENT_ID_KEY: (u64, u64) = (0x666f_6f74_6661_6c6c, 0x7669_7369_746f_7273);

fn keyed(salt: &Salt) -> SipHasher24 {
    let k0 = u64::from_le_bytes(salt[..8].try_into().unwrap_or([0; 8]));
    let k1 = u64::from_le_bytes(salt[8..].try_into().unwrap_or([0; 8]));
    SipHasher24::new_with_keys(k0, k1)
}

fn write_field(h: &mut SipHasher24, bytes: &[u8]) {
    // Length-prefixed so that ("ab","c") and ("a","bc") hash differently.
    h.write_u64(bytes.len() as u64);
    h.write(bytes);
}

/// Cookieless visitor id: SipHash-2-4 keyed by the day's salt over user agent, client IP,
/// site domain and the registrable domain of the page host (Plausible's recipe).
pub fn cookieless_visitor_id(
    salt: &Salt,
    user_agent: &str,
    ip: &str,
    site_domain: &str,
    page_host: &str,
) -> u64 {
    let mut h = keyed(salt);
    write_field(&mut h, user_agent.as_bytes());
    write_field(&mut h, ip.as_bytes());
    write_field(&mut h, site_domain.as_bytes());
    write_field(&mut h, registrable_domain(page_host).as_bytes());
    h.finish()
}

/// Visitor id for an id given by an authenticated client (bulk API, middleware cookie).
pub fn client_visitor_id(site_id: u32, id: &str) -> u64 {
    stable_hash(site_id, b"visitor", id)
}

/// Event id for a client-given event id, so a re-sent id maps to the same event.
pub fn client_event_id(site_id: u32, id: &str) -> u64 {
    stable_hash(site_id, b"event", id)
}

fn stable_hash(site_id: u32, domain: &[u8], id: &str) -> u64 {
    let mut h = SipHasher24::new_with_keys(CLIENT_ID_KEY.0, CLIENT_ID_KEY.1);
    h.write_u32(site_id);
    write_field(&mut h, domain);
    write_field(&mut h, id.as_bytes());
    h.finish()
}

/// Second-level labels under which registrations happen one level deeper (co.uk, com.au …).
/// A short list instead of the full public suffix list: it only decides whether
/// `blog.example.co.uk` and `example.co.uk` count as one site for the visitor hash.
const SECOND_LEVEL: &[&str] = &[
    "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go",
];

/// The registrable ("root") domain of a host: `blog.example.com` -> `example.com`.
pub fn registrable_domain(host: &str) -> &str {
    // Per hit on the cookieless path: label positions from the right, no allocation.
    let mut dots = host.rmatch_indices('.').map(|(i, _)| i);
    let (Some(last), Some(second)) = (dots.next(), dots.next()) else {
        return host; // fewer than three labels
    };
    let tld = &host[last + 1..];
    // IP addresses are kept whole; only a host ending in digits can be one.
    if !tld.is_empty()
        && tld.bytes().all(|b| b.is_ascii_digit())
        && host.parse::<std::net::IpAddr>().is_ok()
    {
        return host;
    }
    let sld = &host[second + 1..last];
    let start = if tld.len() == 2 && SECOND_LEVEL.contains(&sld) {
        dots.next().map_or(0, |third| third + 1)
    } else {
        second + 1
    };
    &host[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable_domain("example.com"), "example.com");
        assert_eq!(registrable_domain("blog.example.com"), "example.com");
        assert_eq!(registrable_domain("a.b.example.com"), "example.com");
        assert_eq!(registrable_domain("shop.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("localhost"), "localhost");
        assert_eq!(registrable_domain("127.0.0.1"), "127.0.0.1");
        assert_eq!(registrable_domain("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
        assert_eq!(
            registrable_domain("a.b.shop.example.co.uk"),
            "example.co.uk"
        );
    }

    /// The allocation-free version answers exactly what the first one did, so cookieless
    /// visitor ids do not change across an upgrade.
    #[test]
    fn registrable_domain_matches_the_first_version() {
        fn first_version(host: &str) -> &str {
            let labels: Vec<&str> = host.rsplitn(4, '.').collect();
            if labels.len() < 3 || host.parse::<std::net::IpAddr>().is_ok() {
                return host;
            }
            let take = if labels[0].len() == 2 && SECOND_LEVEL.contains(&labels[1]) {
                3
            } else {
                2
            };
            let keep: usize = labels[..take].iter().map(|l| l.len()).sum::<usize>() + take - 1;
            &host[host.len() - keep.min(host.len())..]
        }
        for host in [
            "",
            ".",
            "..",
            "...",
            "a",
            "a.b",
            "a.b.c",
            "a.b.c.d.e",
            "example.com",
            "www.example.com.",
            "blog.example.co.uk",
            "example.co.uk",
            "co.uk",
            "x.co.uk",
            "a.b.example.com.au",
            "127.0.0.1",
            "999.1.1.1",
            "1.2.3",
            "::1",
            "::ffff:10.0.0.1",
            "fe80::1",
            "a.b.c:80",
            "shop.example.de",
            "é.example.fr",
            "a..b",
            ".example.com",
        ] {
            assert_eq!(registrable_domain(host), first_version(host), "{host:?}");
        }
    }

    #[test]
    fn cookieless_ids_depend_on_every_input() {
        let salt = [7u8; 16];
        let base = cookieless_visitor_id(&salt, "UA", "1.2.3.4", "ex.com", "ex.com");
        assert_eq!(
            base,
            cookieless_visitor_id(&salt, "UA", "1.2.3.4", "ex.com", "blog.ex.com")
        );
        assert_ne!(
            base,
            cookieless_visitor_id(&salt, "UA2", "1.2.3.4", "ex.com", "ex.com")
        );
        assert_ne!(
            base,
            cookieless_visitor_id(&salt, "UA", "1.2.3.5", "ex.com", "ex.com")
        );
        assert_ne!(
            base,
            cookieless_visitor_id(&[8u8; 16], "UA", "1.2.3.4", "ex.com", "ex.com")
        );
    }

    #[test]
    fn client_ids_are_stable_and_site_scoped() {
        assert_eq!(client_visitor_id(1, "u1"), client_visitor_id(1, "u1"));
        assert_ne!(client_visitor_id(1, "u1"), client_visitor_id(2, "u1"));
        assert_ne!(client_visitor_id(1, "u1"), client_event_id(1, "u1"));
    }
}
