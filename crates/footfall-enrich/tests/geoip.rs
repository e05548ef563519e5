//! GeoIP against MaxMind's test databases: every network in the source JSON the City,
//! Country and ASN test databases were built from must come back as written there, and
//! every corrupt database must be refused with an error naming it, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use footfall_enrich::geo::{GeoIp, Location};
use ipnet::{IpNet, Ipv4Net};
use serde_json::Value;

fn maxmind() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/maxmind-db"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        println!("note: {} absent; GeoIP test skipped", p.display());
        None
    }
}

/// A network from the source JSON. IPv4 networks are written as IPv4-compatible IPv6
/// prefixes ("::81.2.69.142/127"); the databases answer them through their IPv4 subtree,
/// where a reader looks up the plain IPv4 address.
fn network(key: &str) -> IpNet {
    let net: IpNet = key
        .parse()
        .unwrap_or_else(|e| panic!("bad network {key}: {e}"));
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && v6.addr().segments()[..6].iter().all(|s| *s == 0)
    {
        let o = v6.addr().octets();
        let v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
        return IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).expect("valid prefix"));
    }
    net
}

fn last_addr(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4(n.broadcast()),
        IpNet::V6(n) => IpAddr::V6(n.broadcast()),
    }
}

/// The expected answer for a record, read straight from the JSON.
fn expected(rec: &Value) -> Location {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let country = s(&rec["country"]["iso_code"]);
    let sub = &rec["subdivisions"][0];
    let region = match (country.as_str(), sub["iso_code"].as_str()) {
        ("", _) | (_, None) => String::new(),
        (c, Some(code)) => format!("{c}-{code}"),
    };
    Location {
        country_name: s(&rec["country"]["names"]["en"]),
        country,
        region,
        region_name: s(&sub["names"]["en"]),
        city: rec["city"]["geoname_id"].as_u64().unwrap_or(0) as u32,
        city_name: s(&rec["city"]["names"]["en"]),
        org: rec["autonomous_system_organization"]
            .as_str()
            .or(rec["organization"].as_str())
            .unwrap_or_default()
            .to_string(),
    }
}

/// Looks up the first and last address of every network in `source` and compares with
/// the record of the most specific listed network holding that address. Returns
/// (lookups, agreeing).
fn walk(geo: &GeoIp, source: &Path, asn_only: bool) -> (usize, usize) {
    let text = std::fs::read_to_string(source).expect("read source JSON");
    let entries: Vec<serde_json::Map<String, Value>> =
        serde_json::from_str(&text).expect("parse source JSON");
    let records: Vec<(IpNet, Value)> = entries
        .into_iter()
        .flat_map(|m| m.into_iter())
        .map(|(k, v)| (network(&k), v))
        .collect();
    let (mut lookups, mut ok) = (0usize, 0usize);
    let mut misses = Vec::new();
    for (net, _) in &records {
        for ip in [net.network(), last_addr(net)] {
            let Some((_, rec)) = records
                .iter()
                .filter(|(n, _)| n.contains(&ip))
                .max_by_key(|(n, _)| n.prefix_len())
            else {
                continue;
            };
            let mut want = expected(rec);
            let mut got = geo.lookup(ip);
            if asn_only {
                want = Location {
                    org: want.org,
                    ..Location::default()
                };
                got = Location {
                    org: got.org,
                    ..Location::default()
                };
            } else {
                want.org.clear();
            }
            lookups += 1;
            if got == want {
                ok += 1;
            } else if misses.len() < 10 {
                misses.push(format!("{ip}: want {want:?}\n    got {got:?}"));
            }
        }
    }
    for m in misses {
        println!("  miss {m}");
    }
    (lookups, ok)
}

#[test]
fn every_network_of_the_test_databases() {
    let Some(dir) = maxmind() else { return };
    let mut failures = Vec::new();
    for (name, asn) in [
        ("GeoIP2-City-Test", false),
        ("GeoLite2-City-Test", false),
        ("GeoIP2-Country-Test", false),
        ("GeoLite2-Country-Test", false),
        ("GeoLite2-ASN-Test", true),
        ("GeoIP2-ISP-Test", true),
    ] {
        let db = dir.join("test-data").join(format!("{name}.mmdb"));
        let geo = if asn {
            GeoIp::open(None, Some(&db))
        } else {
            GeoIp::open(Some(&db), None)
        }
        .unwrap_or_else(|e| panic!("open {name}: {e}"));
        let (lookups, ok) = walk(
            &geo,
            &dir.join("source-data").join(format!("{name}.json")),
            asn,
        );
        println!(
            "{name}: {ok}/{lookups} lookups agree with source-data/{name}.json ({:.2}%)",
            100.0 * ok as f64 / lookups.max(1) as f64
        );
        assert!(lookups > 0, "{name}: no lookups");
        if ok != lookups {
            failures.push(name);
        }
        // An address in no listed network is unknown, not an error.
        for ip in ["10.0.0.1", "192.0.2.1", "fd00::1"] {
            let got = geo.lookup(ip.parse().expect("ip"));
            assert_eq!(got, Location::default(), "{name}: {ip} should be unknown");
        }
    }
    assert!(failures.is_empty(), "lookups disagree in {failures:?}");
}

#[test]
fn city_and_asn_together() {
    let Some(dir) = maxmind() else { return };
    let geo = GeoIp::open(
        Some(&dir.join("test-data/GeoIP2-City-Test.mmdb")),
        Some(&dir.join("test-data/GeoLite2-ASN-Test.mmdb")),
    )
    .expect("open test databases");
    let london = geo.lookup(IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)));
    assert_eq!(london.country, "GB");
    assert_eq!(london.country_name, "United Kingdom");
    assert_eq!(london.region, "GB-ENG");
    assert_eq!(london.region_name, "England");
    assert_eq!(london.city, 2643743);
    assert_eq!(london.city_name, "London");
    let telstra = geo.lookup(IpAddr::V4(Ipv4Addr::new(1, 128, 0, 1)));
    assert_eq!(telstra.org, "Telstra Pty Ltd");
    let v6 = geo.lookup(IpAddr::V6(Ipv6Addr::new(0x2001, 0x218, 0, 0, 0, 0, 0, 1)));
    assert_eq!(v6.country, "JP");
}

fn mmdb_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            mmdb_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "mmdb") {
            out.push(p);
        }
    }
}

/// The corrupt databases: everything in bad-data/ and the broken ones in test-data/.
pub fn corrupt_databases(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    mmdb_files(&dir.join("bad-data"), &mut files);
    for name in [
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
    ] {
        files.push(dir.join("test-data").join(name));
    }
    files.sort();
    files
}

#[test]
fn corrupt_databases_are_refused_with_their_path() {
    let Some(dir) = maxmind() else { return };
    let files = corrupt_databases(&dir);
    assert!(files.len() >= 20, "found {} corrupt databases", files.len());
    for file in &files {
        for asn in [false, true] {
            let opened = std::panic::catch_unwind(|| {
                if asn {
                    GeoIp::open(None, Some(file))
                } else {
                    GeoIp::open(Some(file), None)
                }
            });
            let result = opened.unwrap_or_else(|_| panic!("opening {} panicked", file.display()));
            let err = match result {
                Ok(_) => panic!("{} was accepted", file.display()),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains(&file.display().to_string()),
                "error for {} does not name it: {err}",
                file.display()
            );
            if !asn {
                println!("{}: {err}", file.display());
            }
        }
    }
}

#[test]
fn a_non_geoip_database_is_refused_for_its_role() {
    let Some(dir) = maxmind() else { return };
    let asn = dir.join("test-data/GeoLite2-ASN-Test.mmdb");
    let err = GeoIp::open(Some(&asn), None).expect_err("ASN as city");
    assert!(err.to_string().contains("GeoLite2-ASN-Test.mmdb"), "{err}");
    let city = dir.join("test-data/GeoIP2-City-Test.mmdb");
    assert!(GeoIp::open(None, Some(&city)).is_err());
    let decoder = dir.join("test-data/MaxMind-DB-test-decoder.mmdb");
    assert!(GeoIp::open(Some(&decoder), None).is_err());
}
