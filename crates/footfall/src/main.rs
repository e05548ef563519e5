//! The `footfall` binary: server, administration, traffic simulation and benchmarks.

/// mimalloc instead of glibc malloc: ingestion allocates many short-lived strings and
/// glibc's arenas both cost CPU (malloc_consolidate) and keep resident memory high.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod cli_admin;
mod enrich_cmd;
mod import;
mod memory;
mod simulate;

use anyhow::Context;
use clap::{Parser, Subcommand};
use footfall_server::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "footfall",
    version,
    about = "Privacy-first visitor analytics server: one binary, embedded store by default.",
    after_help = "Quick start:\n  footfall serve\n  footfall site add example.com --timezone Europe/Berlin\n  footfall key create --site example.com --scope ingest\n\nAdmin commands talk to a running server on the same data directory, or open its files when none runs."
)]
struct Cli {
    /// Data directory (database, write-ahead log, admin token).
    #[arg(
        long,
        global = true,
        env = "FOOTFALL_DATA",
        default_value = "footfall-data"
    )]
    data: PathBuf,
    /// Optional TOML configuration file (flags and FOOTFALL_* variables override it).
    #[arg(long, global = true, env = "FOOTFALL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8070].
        #[arg(long, env = "FOOTFALL_LISTEN")]
        listen: Option<SocketAddr>,
        /// Comma-separated CIDRs whose X-Forwarded-For is trusted [default: loopback].
        #[arg(long, env = "FOOTFALL_TRUSTED_PROXIES")]
        trusted_proxies: Option<String>,
        /// MaxMind DB City or Country database (GeoLite2/GeoIP2/DB-IP) for
        /// country, region and city.
        #[arg(long, env = "FOOTFALL_GEOIP_CITY")]
        geoip_city: Option<PathBuf>,
        /// MaxMind DB ASN or ISP database for the organisation (`visit:org`).
        #[arg(long, env = "FOOTFALL_GEOIP_ASN")]
        geoip_asn: Option<PathBuf>,
        /// Header with the visitor's country set by a CDN in front (e.g. CF-IPCountry);
        /// read only from trusted proxies [default: off].
        #[arg(long, env = "FOOTFALL_COUNTRY_HEADER")]
        country_header: Option<String>,
    },
    /// Print every derived field (browser, OS, device, bot verdict, source, channel,
    /// UTM, location, organisation) for JSON lines on stdin or one hit from flags.
    #[command(
        after_help = "Input lines: {\"ua\": ..., \"ip\": ..., \"referrer\": ..., \"url\": ..., \"headers\": {\"Sec-CH-UA\": ...}}\n(optional: \"site\" applies that site's block rules from --config; \"webdriver\": true)\nOne JSON line out per line in, in order; bad lines give {\"error\": ...}.\nThe IP is only looked up, never printed."
    )]
    Enrich(enrich_cmd::EnrichArgs),
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage goals (`event:goal`, `conversion_rate`); custom event names need none.
    #[command(subcommand)]
    Goal(GoalCommand),
    /// Manage dashboard users and their roles per site (viewer, admin, owner).
    #[command(subcommand)]
    User(UserCommand),
    /// Erase every event of one visitor (GDPR), by the visitor id the site sent.
    EraseVisitor {
        /// Site domain.
        #[arg(long)]
        site: String,
        /// The visitor id as the site sent it (`visitor_id` of the bulk API, the middleware's
        /// or Umami's id), not the hex id the dashboard shows.
        visitor_id: String,
    },
    /// Delete a site's events older than N days (retention).
    Prune {
        /// Site domain.
        #[arg(long)]
        site: String,
        /// Delete events whose time is more than this many days ago.
        #[arg(long)]
        older_than_days: u32,
    },
    /// Export a site's events with their visits' attributes (NDJSON or CSV), in time
    /// order: one line per event.
    Export {
        /// Site domain.
        #[arg(long)]
        site: String,
        /// A Stats API shorthand ("30d", "month", "all", ...) or FROM,TO dates
        /// (YYYY-MM-DD, the site's timezone).
        #[arg(long, default_value = "all")]
        date_range: String,
        /// `ndjson` (one JSON object per line) or `csv` (with a header line).
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// File to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Generate realistic traffic through the real ingestion pipeline.
    Simulate(simulate::SimulateArgs),
    /// Import web-server access logs (combined, common, nginx JSON, Caddy JSON; plain
    /// or gzip) as page views.
    Import(import::ImportArgs),
    /// Measure ingestion and query performance on this machine.
    Bench(bench::BenchArgs),
    /// Time Stats API queries' SQL directly in DuckDB on the data directory (server
    /// stopped): the engine's own figures for `bench` comparisons.
    #[command(hide = true)]
    BenchSql {
        /// Site domain.
        #[arg(long)]
        site: String,
        /// The Stats API v2 query body (JSON). Repeat it to time several queries as one
        /// dashboard load (in turn, sharing a load's matching visits as the server does;
        /// one median per line, in order).
        #[arg(long, required = true)]
        query: Vec<String>,
        /// Timed runs (the median is printed).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Idle time before each run of the queries, in milliseconds (`footfall bench`
        /// pauses 1,500 ms before each dashboard load, and passes the same here).
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
        /// Print the SQL with its parameters inlined instead of timing it.
        #[arg(long)]
        show_sql: bool,
        /// After timing, run the query once more with DuckDB's profiler on and write its
        /// operator tree (time and rows per operator) to this file. The extension
        /// picks the format: .txt (a tree) or .json.
        #[arg(long)]
        profile: Option<std::path::PathBuf>,
    },
    /// Minimal HTTP server answering 202, the baseline for `bench`.
    #[command(hide = true)]
    BenchBaseline {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
}

#[derive(Subcommand, Debug)]
pub enum SiteCommand {
    /// Register a site.
    Add {
        /// The site's domain, as the tracker's `data-domain` names it (example.com).
        domain: String,
        /// IANA timezone used for days and hours in reports.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[command(flatten)]
        settings: SiteSettingsArgs,
    },
    /// Change a site's settings (only those given).
    Set {
        /// Site domain.
        domain: String,
        /// IANA timezone used for days and hours in reports.
        #[arg(long)]
        timezone: Option<String>,
        #[command(flatten)]
        settings: SiteSettingsArgs,
    },
    /// Print a read-only dashboard link for a site (backed by a new stats key named
    /// "shared link"; `key revoke` ends it).
    Share {
        /// Site domain.
        domain: String,
    },
    /// List sites with their settings.
    List,
    /// Remove a site with its keys and events.
    Remove {
        /// Site domain.
        domain: String,
    },
}

/// Site settings besides the timezone (`site add`, `site set`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SiteSettingsArgs {
    /// `cookieless` (default: a daily-salted hash of IP and user agent, no cookie) or
    /// `cookie` (the tracker keeps a first-party visitor id).
    #[arg(long)]
    pub identity_mode: Option<String>,
    /// Minutes of inactivity after which the next hit starts a new visit [default: 30].
    #[arg(long)]
    pub session_timeout_mins: Option<u32>,
    /// Comma-separated hostnames whose hits are stored, each with its subdomains; hits
    /// for other hosts are dropped (default: none configured, every hostname is stored);
    /// "" resets to the default.
    #[arg(long)]
    pub allowed_hostnames: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user who signs in to the dashboard with an email and password (argon2id).
    /// Without --password-stdin a password is generated and printed once.
    Add {
        /// The user's email address (their sign-in name).
        email: String,
        /// Give the user a role on this site.
        #[arg(long, requires = "role")]
        site: Option<String>,
        /// `viewer` (reads the site's stats), `admin` (also its settings, goals and shared
        /// links) or `owner` (also deletes it).
        #[arg(long, requires = "site")]
        role: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles.
    List,
    /// Give a user a role on a site (replacing the one they had there).
    Grant {
        /// The user's email address.
        email: String,
        /// Site domain.
        #[arg(long)]
        site: String,
        /// `viewer`, `admin` or `owner`.
        #[arg(long)]
        role: String,
    },
    /// Take a user's role on a site away.
    Revoke {
        /// The user's email address.
        email: String,
        /// Site domain.
        #[arg(long)]
        site: String,
    },
    /// Set a new password (from standard input, or generated and printed); signs the user
    /// out everywhere.
    Password {
        /// The user's email address.
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user.
    Remove {
        /// The user's email address.
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GoalCommand {
    /// Add a goal: page views of a path pattern (`--page "/blog/**"`, shown as
    /// `Visit /blog/**`; `*` matches within a path segment, `**` across them) or a
    /// custom event (`--event Signup`).
    Add {
        /// Site domain.
        #[arg(long)]
        site: String,
        /// Path pattern of the page views that complete the goal.
        #[arg(long, conflicts_with = "event", required_unless_present = "event")]
        page: Option<String>,
        /// Custom event name that completes the goal.
        #[arg(long)]
        event: Option<String>,
    },
    /// List a site's goals with their ids.
    List {
        /// Site domain.
        #[arg(long)]
        site: String,
    },
    /// Remove a goal by id.
    Remove {
        /// Site domain.
        #[arg(long)]
        site: String,
        /// The goal's id (`goal list`).
        id: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a key; the key is printed alone on the last line.
    Create {
        /// Site domain.
        #[arg(long)]
        site: String,
        /// `ingest` (bulk API) or `stats` (Stats API).
        #[arg(long)]
        scope: String,
        /// A label for the key in `key list` (where it is used, by whom).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List keys with usage counts.
    List {
        /// Only this site's keys.
        #[arg(long)]
        site: Option<String>,
    },
    /// Revoke a key by id.
    Revoke {
        /// The key's id (`key list`).
        id: u32,
    },
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOOTFALL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn load_config(cli: &Cli, extra: &[(&str, String)]) -> anyhow::Result<Config> {
    let mut overrides = vec![("data", cli.data.display().to_string())];
    overrides.extend(extra.iter().cloned());
    Config::load(cli.config.as_deref(), &overrides).context("invalid configuration")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve {
            listen,
            trusted_proxies,
            geoip_city,
            geoip_asn,
            country_header,
        } => {
            init_tracing("info");
            let mut extra = Vec::new();
            if let Some(l) = listen {
                extra.push(("listen", l.to_string()));
            }
            if let Some(t) = trusted_proxies {
                extra.push(("trusted_proxies", t.clone()));
            }
            if let Some(p) = geoip_city {
                extra.push(("geoip_city", p.display().to_string()));
            }
            if let Some(p) = geoip_asn {
                extra.push(("geoip_asn", p.display().to_string()));
            }
            if let Some(h) = country_header {
                extra.push(("country_header", h.clone()));
            }
            let config = load_config(&cli, &extra)?;
            memory::apply(memory::AllocatorSettings {
                malloc_arena_max: config.malloc_arena_max,
                memory_target_bytes: config.memory_target_mb << 20,
            });
            if config.memory_report_secs > 0 {
                memory::spawn_report(std::time::Duration::from_secs(config.memory_report_secs));
            }
            footfall_server::serve(config, shutdown_signal()).await
        }
        Command::Site(cmd) => {
            init_tracing("warn");
            cli_admin::site(&load_config(&cli, &[])?, cmd).await
        }
        Command::Key(cmd) => {
            init_tracing("warn");
            cli_admin::key(&load_config(&cli, &[])?, cmd).await
        }
        Command::Goal(cmd) => {
            init_tracing("warn");
            cli_admin::goal(&load_config(&cli, &[])?, cmd).await
        }
        Command::User(cmd) => {
            init_tracing("warn");
            cli_admin::user(&load_config(&cli, &[])?, cmd).await
        }
        Command::EraseVisitor { site, visitor_id } => {
            init_tracing("warn");
            cli_admin::erase_visitor(&load_config(&cli, &[])?, site, visitor_id).await
        }
        Command::Prune {
            site,
            older_than_days,
        } => {
            init_tracing("warn");
            cli_admin::prune(&load_config(&cli, &[])?, site, *older_than_days).await
        }
        Command::Export {
            site,
            date_range,
            format,
            output,
            quiet,
        } => {
            init_tracing("warn");
            let request = cli_admin::ExportRequest {
                site,
                date_range,
                format,
                output: output.as_deref(),
                quiet: *quiet,
            };
            cli_admin::export(&load_config(&cli, &[])?, &request).await
        }
        Command::Simulate(args) => {
            init_tracing("warn");
            let config = load_config(&cli, &[])?;
            let explicit = args.send.explicit_target()?;
            cli_admin::with_server(&config, explicit, |target| {
                simulate::run(target, args.clone())
            })
            .await
        }
        Command::Import(args) => {
            init_tracing("warn");
            let config = load_config(&cli, &[])?;
            let explicit = args.send.explicit_target()?;
            cli_admin::with_server(&config, explicit, |target| {
                import::run(target, args.clone())
            })
            .await
        }
        Command::Enrich(args) => {
            init_tracing("warn");
            enrich_cmd::run(&load_config(&cli, &[])?, args)
        }
        Command::Bench(args) => {
            init_tracing("warn");
            bench::run(args.clone()).await
        }
        Command::BenchBaseline { listen } => bench::baseline_server(*listen).await,
        Command::BenchSql {
            site,
            query,
            runs,
            pause_ms,
            show_sql,
            profile,
        } => {
            init_tracing("warn");
            let config = load_config(&cli, &[])?;
            let output = bench::SqlOutput {
                show_sql: *show_sql,
                profile: profile.as_deref(),
                pause: std::time::Duration::from_millis(*pause_ms),
            };
            bench::direct_sql(&config, site, query, *runs, output).await
        }
    }
}
