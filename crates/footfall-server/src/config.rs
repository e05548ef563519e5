//! Configuration: defaults, then an optional TOML file, then `FOOTFALL_*` environment
//! variables, then command-line flags (each layer overrides the previous).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use footfall_enrich::rules::SiteSettings;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default `memory_target_mb`. A dashboard's queries over 10M events on a freshly
/// started server then peaked at 273-286 MiB instead of 313-354, for ~10-20 % more query
/// time (BENCHMARKS.md §5; before `ff_uniq`, whose sets add ~30-40 MiB to the peak):
/// below 300 MB, the performance issue's bound, with room for what is allocated between
/// two checks.
pub const DEFAULT_MEMORY_TARGET_MB: u64 = 256;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the database, the write-ahead log and the admin token.
    pub data: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Comma-separated CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: String,
    /// DuckDB memory limit for Stats API queries, e.g. "128MB" (the default) or "1GB".
    pub duckdb_memory_limit: String,
    /// DuckDB memory limit while the store writer works through a backlog (until no
    /// backlog batch came for a second), e.g. "64MB" (the default); at most
    /// `duckdb_memory_limit`.
    pub duckdb_write_memory_limit: String,
    /// DuckDB worker threads for queries; store batches run on one (`OneDuckThread`).
    pub duckdb_threads: u32,
    /// Serve repeated identical Stats API queries from memory while no write happened
    /// (any stored event clears it). Off to measure the engine (`query_cache = false`).
    pub query_cache: bool,
    /// Megabytes of write-ahead log acknowledged but not yet in the store beyond which
    /// ingestion answers 503 (the backlog is on disk, not in memory).
    pub max_backlog_mb: u64,
    /// Most events the store writer appends in one transaction (the applier gathers up
    /// to this many; two such batches are in memory at once: one being written, the
    /// next being gathered). 50,000 rather than 100,000: a bulk load peaks ~55-70 MiB
    /// lower for ~3-5 % of its storing rate (BENCHMARKS.md History).
    pub store_batch: usize,
    /// glibc malloc arenas (DuckDB's C++ allocates through glibc malloc; its default is
    /// 8 per core, each keeping its own free memory). 0: glibc's default.
    pub malloc_arena_max: u32,
    /// Resident set in MiB above which the memory glibc malloc holds freed (DuckDB's)
    /// goes back to the system at once (checked every 20 ms) rather than within a second.
    /// A target, not a limit: live memory is never dropped. 0: off.
    pub memory_target_mb: u64,
    /// Seconds between memory reports in the log (resident set, what glibc malloc,
    /// mimalloc and DuckDB hold; target `footfall::memory`). 0: off.
    pub memory_report_secs: u64,
    /// MaxMind DB City or Country database (GeoLite2, GeoIP2, DB-IP Lite).
    pub geoip_city: Option<PathBuf>,
    /// MaxMind DB ASN or ISP database (organisation, `visit:org`).
    pub geoip_asn: Option<PathBuf>,
    /// Request header carrying the visitor's country from a CDN (e.g. "CF-IPCountry"),
    /// read only from trusted proxies and only when no GeoIP database gives a country.
    /// Off when empty: clients can send any header.
    pub country_header: String,
    /// Stats API requests per hour per key (`/api/v2/query`, realtime, drops), refilled
    /// continuously; over it, 429 `rate_limited` with `Retry-After`. 0 (the default): no
    /// limit, since keys are the operator's own (Plausible's hosted API allows 600).
    /// The admin token is never limited.
    pub stats_rate_limit: u32,
    /// Per-site settings: `[[sites."example.com".block]]` rules (see
    /// footfall_enrich::rules).
    pub sites: BTreeMap<String, SiteSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("footfall-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8070)),
            trusted_proxies: "127.0.0.0/8,::1/128".into(),
            duckdb_memory_limit: footfall_store_duckdb::DEFAULT_MEMORY_LIMIT.into(),
            duckdb_write_memory_limit: footfall_store_duckdb::DEFAULT_WRITE_MEMORY_LIMIT.into(),
            duckdb_threads: 2,
            query_cache: true,
            max_backlog_mb: 1024,
            store_batch: 50_000,
            malloc_arena_max: 2,
            memory_target_mb: DEFAULT_MEMORY_TARGET_MB,
            memory_report_secs: 0,
            geoip_city: None,
            geoip_asn: None,
            country_header: String::new(),
            stats_rate_limit: 0,
            sites: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Layers defaults, `file` (if any), the `FOOTFALL_*` variables and `overrides`
    /// (command-line flags already given as key/value pairs).
    pub fn load(
        file: Option<&Path>,
        overrides: &[(&str, String)],
    ) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed("FOOTFALL_").only(&[
            "data",
            "listen",
            "trusted_proxies",
            "duckdb_memory_limit",
            "duckdb_write_memory_limit",
            "duckdb_threads",
            "query_cache",
            "max_backlog_mb",
            "store_batch",
            "malloc_arena_max",
            "memory_target_mb",
            "memory_report_secs",
            "geoip_city",
            "geoip_asn",
            "country_header",
            "stats_rate_limit",
        ]));
        for (key, value) in overrides {
            fig = fig.merge(Serialized::global(key, value));
        }
        fig.extract::<Config>().map_err(Box::new)
    }

    pub fn trusted_proxy_nets(&self) -> Result<Vec<IpNet>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("invalid trusted proxy CIDR {s:?}"))
            })
            .collect()
    }

    /// Opens the GeoIP databases and compiles the block rules (start-up errors name the
    /// file or the rule at fault).
    pub fn enrichment(&self) -> anyhow::Result<footfall_ingest::pipeline::Enrichment> {
        let geo = footfall_enrich::geo::GeoIp::open(
            self.geoip_city.as_deref(),
            self.geoip_asn.as_deref(),
        )?;
        let rules = footfall_enrich::rules::BlockRules::compile(&self.sites)?;
        let labels = footfall_enrich::rules::LabelBook::from_config(&self.sites)?;
        Ok(footfall_ingest::pipeline::Enrichment { geo, rules, labels })
    }

    pub fn db_path(&self) -> PathBuf {
        self.data.join("footfall.duckdb")
    }
    pub fn wal_dir(&self) -> PathBuf {
        self.data.join("wal")
    }
    pub fn admin_token_path(&self) -> PathBuf {
        self.data.join("admin-token")
    }
    pub fn server_file(&self) -> PathBuf {
        self.data.join("server.json")
    }

    /// Whether live invitations are on for a site (by its normalised domain).
    pub fn live_invites(&self, domain: &str) -> bool {
        self.sites
            .iter()
            .any(|(d, s)| s.live_invites && crate::state::normalize_domain(d) == domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_settings_come_from_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("footfall.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\n[sites.\"www.Example.com\"]\nlive_invites = true\n",
        )
        .expect("write config");
        let config = Config::load(Some(&path), &[]).expect("load");
        assert!(config.live_invites("example.com"));
        assert!(!config.live_invites("other.com"));
        std::fs::write(&path, "[sites.\"a.com\"]\nlive_invite = true\n").expect("write");
        assert!(
            Config::load(Some(&path), &[]).is_err(),
            "unknown keys are errors"
        );
    }
}
