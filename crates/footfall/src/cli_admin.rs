//! Admin commands. With a server running on the data directory they go through its
//! admin API (DuckDB allows one writing process); otherwise they open the files.

use crate::{GoalCommand, KeyCommand, SiteCommand, SiteSettingsArgs, UserCommand};
use anyhow::{Context, bail};
use footfall_server::config::Config;
use footfall_server::{admin, admin_token, open_embedded};
use footfall_store::{KeyScope, MetaStore};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;

/// A running server found through DATA/server.json.
pub struct RunningServer {
    pub url: String,
    pub token: String,
    client: reqwest::Client,
}

impl RunningServer {
    pub async fn discover(config: &Config) -> Option<RunningServer> {
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(config.server_file()).ok()?).ok()?;
        let url = info.get("url")?.as_str()?.to_string();
        let token = std::fs::read_to_string(config.admin_token_path())
            .ok()?
            .trim()
            .to_string();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .ok()?;
        let ok = client
            .get(format!("{url}/api/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        ok.then_some(RunningServer { url, token, client })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.context("the server did not answer")?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = value.get("error").and_then(Value::as_str).unwrap_or(&text);
            bail!("{msg}");
        }
        Ok(value)
    }
}

fn print_site(site: &Value) {
    let hosts: Vec<&str> = site["allowed_hostnames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "{}\ttimezone={}\tid={}\tidentity={}\tsession_timeout={}min\tallowed_hostnames={}",
        site["domain"].as_str().unwrap_or_default(),
        site["timezone"].as_str().unwrap_or_default(),
        site["id"],
        site["identity_mode"].as_str().unwrap_or_default(),
        site["session_timeout_secs"].as_u64().unwrap_or(0) / 60,
        if hosts.is_empty() {
            "(domain and subdomains)".to_string()
        } else {
            hosts.join(",")
        }
    );
}

fn site_changes(timezone: Option<&str>, s: &SiteSettingsArgs) -> admin::SiteChanges {
    admin::SiteChanges {
        timezone: timezone.map(str::to_owned),
        identity_mode: s.identity_mode.clone(),
        session_timeout_secs: s.session_timeout_mins.map(|m| m.saturating_mul(60)),
        allowed_hostnames: s.allowed_hostnames.as_ref().map(|h| {
            h.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    }
}

/// The admin API body of site settings.
fn changes_json(c: &admin::SiteChanges) -> Value {
    let mut v = json!({});
    if let Some(tz) = &c.timezone {
        v["timezone"] = json!(tz);
    }
    if let Some(mode) = &c.identity_mode {
        v["identity_mode"] = json!(mode);
    }
    if let Some(secs) = c.session_timeout_secs {
        v["session_timeout_secs"] = json!(secs);
    }
    if let Some(hosts) = &c.allowed_hostnames {
        v["allowed_hostnames"] = json!(hosts);
    }
    v
}

pub async fn site(config: &Config, cmd: &SiteCommand) -> anyhow::Result<()> {
    if let Some(server) = RunningServer::discover(config).await {
        match cmd {
            SiteCommand::Add {
                domain,
                timezone,
                settings,
            } => {
                let mut body = changes_json(&site_changes(None, settings));
                body["domain"] = json!(domain);
                body["timezone"] = json!(timezone);
                let site = server
                    .call(reqwest::Method::POST, "/api/admin/sites", Some(body))
                    .await?;
                print_added_site(&site);
            }
            SiteCommand::Set {
                domain,
                timezone,
                settings,
            } => {
                let changes = site_changes(timezone.as_deref(), settings);
                if changes.is_empty() {
                    bail!(
                        "nothing to change: give --timezone, --identity-mode, --session-timeout-mins or --allowed-hostnames"
                    );
                }
                let site = server
                    .call(
                        reqwest::Method::PATCH,
                        &format!("/api/admin/sites/{domain}"),
                        Some(changes_json(&changes)),
                    )
                    .await?;
                print_site(&site);
            }
            SiteCommand::Share { domain } => {
                let link = server
                    .call(
                        reqwest::Method::POST,
                        &format!("/api/admin/sites/{domain}/shared-links"),
                        None,
                    )
                    .await?;
                print_shared_link(&server.url, &link);
            }
            SiteCommand::List => {
                let sites = server
                    .call(reqwest::Method::GET, "/api/admin/sites", None)
                    .await?;
                sites["sites"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .for_each(print_site);
            }
            SiteCommand::Remove { domain } => {
                server
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/api/admin/sites/{domain}"),
                        None,
                    )
                    .await?;
                println!("removed {domain}");
            }
        }
        return Ok(());
    }
    let store = open_embedded(config)?;
    let meta: &dyn MetaStore = &store;
    match cmd {
        SiteCommand::Add {
            domain,
            timezone,
            settings,
        } => {
            let site =
                admin::add_site_with(meta, domain, timezone, &site_changes(None, settings)).await?;
            print_added_site(&json!(site));
        }
        SiteCommand::Set {
            domain,
            timezone,
            settings,
        } => {
            let changes = site_changes(timezone.as_deref(), settings);
            if changes.is_empty() {
                bail!(
                    "nothing to change: give --timezone, --identity-mode, --session-timeout-mins or --allowed-hostnames"
                );
            }
            let site = admin::update_site(meta, domain, &changes).await?;
            print_site(&json!(site));
        }
        SiteCommand::Share { domain } => {
            let site = admin::find_site(meta, domain).await?;
            let (record, path) = admin::create_shared_link(meta, &site).await?;
            print_shared_link(
                &format!("http://{}", config.listen),
                &json!({"site": site.domain, "key_id": record.id, "path": path}),
            );
        }
        SiteCommand::List => meta
            .sites()
            .await?
            .iter()
            .map(|s| json!(s))
            .for_each(|s| print_site(&s)),
        SiteCommand::Remove { domain } => {
            let site = admin::find_site(meta, domain).await?;
            meta.remove_site(&site.domain).await?;
            footfall_store::EventSink::delete_site_events(&store, site.id).await?;
            println!("removed {}", site.domain);
        }
    }
    Ok(())
}

fn print_shared_link(base: &str, link: &Value) {
    println!(
        "read-only dashboard link for {} (stats key {}; `footfall key revoke {}` ends it):",
        link["site"].as_str().unwrap_or_default(),
        link["key_id"],
        link["key_id"]
    );
    println!("{base}{}", link["path"].as_str().unwrap_or_default());
    eprintln!("(behind a proxy or on another host, keep the path and use your public address)");
}

fn print_added_site(site: &Value) {
    let domain = site["domain"].as_str().unwrap_or_default();
    println!(
        "added site {domain} (timezone {})",
        site["timezone"].as_str().unwrap_or_default()
    );
    eprintln!(
        "next: footfall key create --site {domain} --scope ingest   (and --scope stats for the Stats API)"
    );
}

pub async fn goal(config: &Config, cmd: &GoalCommand) -> anyhow::Result<()> {
    if let Some(server) = RunningServer::discover(config).await {
        match cmd {
            GoalCommand::Add { site, page, event } => {
                let body = match (page, event) {
                    (Some(page), _) => json!({"page": page}),
                    (None, Some(event)) => json!({"event": event}),
                    (None, None) => bail!("give --page or --event"),
                };
                let goal = server
                    .call(
                        reqwest::Method::POST,
                        &format!("/api/admin/sites/{site}/goals"),
                        Some(body),
                    )
                    .await?;
                print_added_goal(&goal, site);
            }
            GoalCommand::List { site } => {
                let goals = server
                    .call(
                        reqwest::Method::GET,
                        &format!("/api/admin/sites/{site}/goals"),
                        None,
                    )
                    .await?;
                print_goals(goals["goals"].as_array().cloned().unwrap_or_default());
            }
            GoalCommand::Remove { site, id } => {
                server
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/api/admin/sites/{site}/goals/{id}"),
                        None,
                    )
                    .await?;
                println!("removed goal {id} of {site}");
            }
        }
        return Ok(());
    }
    let store = open_embedded(config)?;
    let meta: &dyn MetaStore = &store;
    match cmd {
        GoalCommand::Add { site, page, event } => {
            let spec = match (page, event) {
                (Some(page), _) => admin::GoalSpec::Page(page.clone()),
                (None, Some(event)) => admin::GoalSpec::Event(event.clone()),
                (None, None) => bail!("give --page or --event"),
            };
            let found = admin::find_site(meta, site).await?;
            let goal = admin::add_goal(meta, &found, spec).await?;
            print_added_goal(&json!(goal), site);
        }
        GoalCommand::List { site } => {
            let found = admin::find_site(meta, site).await?;
            let goals = meta.goal_records(found.id).await?;
            print_goals(goals.iter().map(|g| json!(g)).collect());
        }
        GoalCommand::Remove { site, id } => {
            let found = admin::find_site(meta, site).await?;
            meta.remove_goal(found.id, *id).await?;
            println!("removed goal {id} of {site}");
        }
    }
    Ok(())
}

fn print_added_goal(goal: &Value, site: &str) {
    println!(
        "added goal {} \"{}\" to {site}",
        goal["id"],
        goal["display_name"].as_str().unwrap_or_default()
    );
}

fn print_goals(goals: Vec<Value>) {
    println!("id\tkind\tgoal");
    for g in goals {
        println!(
            "{}\t{}\t{}",
            g["id"],
            g["kind"].as_str().unwrap_or_default(),
            g["display_name"].as_str().unwrap_or_default()
        );
    }
}

pub async fn key(config: &Config, cmd: &KeyCommand) -> anyhow::Result<()> {
    if let Some(server) = RunningServer::discover(config).await {
        match cmd {
            KeyCommand::Create { site, scope, name } => {
                let key = server
                    .call(
                        reqwest::Method::POST,
                        "/api/admin/keys",
                        Some(json!({"site": site, "scope": scope, "name": name})),
                    )
                    .await?;
                print_created_key(&key, key["key"].as_str().unwrap_or_default());
            }
            KeyCommand::List { site } => {
                let keys = server
                    .call(reqwest::Method::GET, "/api/admin/keys", None)
                    .await?;
                print_keys(
                    keys["keys"].as_array().cloned().unwrap_or_default(),
                    site.as_deref(),
                );
            }
            KeyCommand::Revoke { id } => {
                server
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/api/admin/keys/{id}"),
                        None,
                    )
                    .await?;
                println!("revoked key {id}");
            }
        }
        return Ok(());
    }
    let store = open_embedded(config)?;
    let meta: &dyn MetaStore = &store;
    match cmd {
        KeyCommand::Create { site, scope, name } => {
            let scope = KeyScope::parse(scope)
                .with_context(|| format!("scope {scope:?} must be `ingest` or `stats`"))?;
            let site = admin::find_site(meta, site).await?;
            let (record, key) = admin::create_key(meta, &site, scope, name).await?;
            print_created_key(&json!(record), &key);
        }
        KeyCommand::List { site } => {
            let keys = meta.keys().await?.iter().map(|k| json!(k)).collect();
            print_keys(keys, site.as_deref());
        }
        KeyCommand::Revoke { id } => {
            meta.revoke_key(*id).await?;
            println!("revoked key {id}");
        }
    }
    Ok(())
}

fn print_created_key(record: &Value, key: &str) {
    println!(
        "created {} key {} for {} (shown once; store it now)",
        record["scope"].as_str().unwrap_or_default(),
        record["id"],
        record["site_domain"].as_str().unwrap_or_default()
    );
    println!("{key}");
}

fn print_keys(keys: Vec<Value>, site: Option<&str>) {
    println!("id\tsite\tscope\tprefix\tuses\tlast_used\tstatus");
    for k in keys {
        if site.is_some_and(|s| k["site_domain"].as_str() != Some(s)) {
            continue;
        }
        println!(
            "{}\t{}\t{}\t{}…\t{}\t{}\t{}",
            k["id"],
            k["site_domain"].as_str().unwrap_or_default(),
            k["scope"].as_str().unwrap_or_default(),
            k["prefix"].as_str().unwrap_or_default(),
            k["usage_count"],
            k["last_used_at"].as_str().unwrap_or("never"),
            if k["revoked"].as_bool() == Some(true) {
                "revoked"
            } else {
                "active"
            },
        );
    }
}

/// Runs `f` against a server on this data directory: the running one, or one started
/// in-process on a free loopback port for the duration of the call.
pub async fn with_server<F, Fut>(
    config: &Config,
    explicit: Option<crate::simulate::Target>,
    f: F,
) -> anyhow::Result<()>
where
    F: FnOnce(crate::simulate::Target) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if let Some(target) = explicit {
        return f(target).await;
    }
    if let Some(server) = RunningServer::discover(config).await {
        return f(crate::simulate::Target {
            base_url: server.url,
            token: server.token,
        })
        .await;
    }
    let mut config = config.clone();
    config.listen = "127.0.0.1:0".parse()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let _ = std::fs::remove_file(config.server_file());
    let server = tokio::spawn(footfall_server::serve(config.clone(), async {
        let _ = stop_rx.await;
    }));
    let target = loop {
        if server.is_finished() {
            return match server.await {
                Ok(Err(e)) => Err(e),
                _ => bail!("the in-process server stopped"),
            };
        }
        if let Some(s) = RunningServer::discover(&config).await {
            break crate::simulate::Target {
                base_url: s.url,
                token: admin_token(&config.admin_token_path())?,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let result = f(target).await;
    let _ = stop_tx.send(());
    server.await.context("server task")??;
    result
}

/// GDPR erase of one visitor (by the id the site sent), online or offline.
pub async fn erase_visitor(config: &Config, site: &str, visitor: &str) -> anyhow::Result<()> {
    let deleted = if let Some(server) = RunningServer::discover(config).await {
        let path = format!("/api/v1/sites/{site}/visitors/{visitor}");
        server.call(reqwest::Method::DELETE, &path, None).await?["deleted_events"]
            .as_u64()
            .unwrap_or(0)
    } else {
        let store = open_embedded(config)?;
        let site = admin::find_site(&store, site).await?;
        admin::erase_visitor(&store, &site, visitor).await?
    };
    println!("erased {deleted} events of visitor {visitor}");
    Ok(())
}

/// Retention: deletes a site's events older than `days` days, online or offline.
pub async fn prune(config: &Config, site: &str, days: u32) -> anyhow::Result<()> {
    let deleted = if let Some(server) = RunningServer::discover(config).await {
        let body = json!({"older_than_days": days});
        let path = format!("/api/v1/sites/{site}/prune");
        server
            .call(reqwest::Method::POST, &path, Some(body))
            .await?["deleted_events"]
            .as_u64()
            .unwrap_or(0)
    } else {
        let store = open_embedded(config)?;
        let site = admin::find_site(&store, site).await?;
        admin::prune(&store, &site, days).await?
    };
    println!("deleted {deleted} events older than {days} days");
    Ok(())
}

/// What `footfall export` was asked for.
pub struct ExportRequest<'a> {
    pub site: &'a str,
    pub date_range: &'a str,
    pub format: &'a str,
    pub output: Option<&'a std::path::Path>,
    pub quiet: bool,
}

/// Progress in rows over `total`, on standard error (hidden with `--quiet`).
fn export_progress(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
    ) {
        pb.set_style(style);
    }
    pb
}

/// Events with their visits as NDJSON or CSV, from the running server's export endpoint
/// or, with none, from the files; the same bytes either way (`footfall_server::export`).
pub async fn export(config: &Config, req: &ExportRequest<'_>) -> anyhow::Result<()> {
    use footfall_server::export::ExportFormat;
    use std::io::Write;
    let format = ExportFormat::parse(req.format)
        .with_context(|| format!("format {:?} must be ndjson or csv", req.format))?;
    let mut out: Box<dyn Write + Send> = match req.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let written = if let Some(server) = RunningServer::discover(config).await {
        let mut resp = server
            .client
            .get(format!(
                "{}/api/v1/sites/{}/export?date_range={}&format={}",
                server.url,
                req.site,
                query_value(req.date_range),
                query_value(req.format)
            ))
            .bearer_auth(&server.token)
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await
            .context("the server did not answer")?;
        if !resp.status().is_success() {
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            bail!("{}", v["error"].as_str().unwrap_or("the export failed"));
        }
        let total = resp
            .headers()
            .get("x-footfall-export-rows")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let pb = export_progress(total, req.quiet);
        while let Some(chunk) = resp.chunk().await.context("the export broke off")? {
            out.write_all(&chunk)?;
            let lines = chunk.iter().filter(|b| **b == b'\n').count() as u64;
            pb.set_position((pb.position() + lines).min(total));
        }
        pb.finish_and_clear();
        total
    } else {
        let store = open_embedded(config)?;
        let site = admin::find_site(&store, req.site).await?;
        let (start_us, end_us, _) =
            footfall_server::export::date_range(&site, Some(req.date_range), "all")
                .map_err(|e| anyhow::anyhow!(e))?;
        let query: &dyn footfall_store::EventQuery = &store;
        let total = query.export_count(site.id, start_us, end_us).await?;
        let pb = export_progress(total, req.quiet);
        out.write_all(&format.header())?;
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (sink, progress, error) = (out, pb.clone(), failed.clone());
        let sink = std::sync::Arc::new(std::sync::Mutex::new(sink));
        let writer = sink.clone();
        let each: footfall_store::EachExportChunk = Box::new(move |rows| {
            let mut bytes = Vec::with_capacity(rows.len() * 512);
            format.write_rows(rows, &mut bytes);
            progress.inc(rows.len() as u64);
            let wrote = match writer.lock() {
                Ok(mut w) => w.write_all(&bytes),
                Err(_) => Err(std::io::Error::other("the export's writer panicked")),
            };
            match wrote {
                Ok(()) => true,
                Err(e) => {
                    if let Ok(mut slot) = error.lock() {
                        *slot = Some(e);
                    }
                    false
                }
            }
        });
        query.export(site.id, start_us, end_us, each).await?;
        pb.finish_and_clear();
        if let Some(e) = failed.lock().ok().and_then(|mut slot| slot.take()) {
            return Err(e).context("writing the export");
        }
        out = match std::sync::Arc::try_unwrap(sink) {
            Ok(m) => m
                .into_inner()
                .map_err(|_| anyhow::anyhow!("the export's writer panicked"))?,
            Err(_) => bail!("the export's writer is still in use"),
        };
        total
    };
    out.flush().context("writing the export")?;
    if req.output.is_some() {
        eprintln!("exported {written} events of {}", req.site);
    }
    Ok(())
}

/// `s` percent-encoded for a URL query value (unreserved characters kept).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The password for `user add` / `user password`: standard input's first line, or a
/// generated one (printed once).
fn password_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if !stdin {
        return Ok((admin::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
}

fn print_users(users: &[Value]) {
    println!("email\troles");
    for u in users {
        let roles: Vec<String> = u["sites"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                format!(
                    "{}:{}",
                    m["site"].as_str().unwrap_or_default(),
                    m["role"].as_str().unwrap_or_default()
                )
            })
            .collect();
        println!(
            "{}\t{}",
            u["email"].as_str().unwrap_or_default(),
            if roles.is_empty() {
                "(none)".to_string()
            } else {
                roles.join(", ")
            }
        );
    }
}

fn role_of(name: &str) -> anyhow::Result<footfall_store::Role> {
    footfall_store::Role::parse(name)
        .with_context(|| format!("role {name:?} must be viewer, admin or owner"))
}

pub async fn user(config: &Config, cmd: &UserCommand) -> anyhow::Result<()> {
    let path = |email: &str, rest: &str| format!("/api/admin/users/{}{rest}", query_value(email));
    if let Some(server) = RunningServer::discover(config).await {
        match cmd {
            UserCommand::Add {
                email,
                site,
                role,
                password_stdin,
            } => {
                let (password, generated) = password_from(*password_stdin)?;
                let mut body = json!({"email": email, "password": password});
                if let (Some(site), Some(role)) = (site, role) {
                    body["site"] = json!(site);
                    body["role"] = json!(role);
                }
                let user = server
                    .call(reqwest::Method::POST, "/api/admin/users", Some(body))
                    .await?;
                print_added_user(&user, generated.then_some(password.as_str()));
            }
            UserCommand::List => {
                let users = server
                    .call(reqwest::Method::GET, "/api/admin/users", None)
                    .await?;
                print_users(
                    users["users"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                );
            }
            UserCommand::Grant { email, site, role } => {
                let p = path(email, &format!("/sites/{site}"));
                server
                    .call(reqwest::Method::PUT, &p, Some(json!({"role": role})))
                    .await?;
                println!("{email} is now {role} on {site}");
            }
            UserCommand::Revoke { email, site } => {
                let p = path(email, &format!("/sites/{site}"));
                server.call(reqwest::Method::DELETE, &p, None).await?;
                println!("{email} has no role on {site} any more");
            }
            UserCommand::Password {
                email,
                password_stdin,
            } => {
                let (password, generated) = password_from(*password_stdin)?;
                let p = path(email, "/password");
                server
                    .call(
                        reqwest::Method::PUT,
                        &p,
                        Some(json!({"password": password})),
                    )
                    .await?;
                print_new_password(email, generated.then_some(password.as_str()));
            }
            UserCommand::Remove { email } => {
                server
                    .call(reqwest::Method::DELETE, &path(email, ""), None)
                    .await?;
                println!("removed user {email}");
            }
        }
        return Ok(());
    }
    let store = open_embedded(config)?;
    let meta: &dyn MetaStore = &store;
    match cmd {
        UserCommand::Add {
            email,
            site,
            role,
            password_stdin,
        } => {
            let (password, generated) = password_from(*password_stdin)?;
            let site = match (site, role) {
                (Some(site), Some(role)) => {
                    Some((admin::find_site(meta, site).await?, role_of(role)?))
                }
                _ => None,
            };
            let user = admin::add_user(meta, email, &password, site.as_ref().map(|(s, r)| (s, *r)))
                .await?;
            print_added_user(&json!(user), generated.then_some(password.as_str()));
        }
        UserCommand::List => {
            let users: Vec<Value> = meta.users().await?.iter().map(|u| json!(u)).collect();
            print_users(&users);
        }
        UserCommand::Grant { email, site, role } => {
            let (user, found) = (
                admin::find_user(meta, email).await?,
                admin::find_site(meta, site).await?,
            );
            meta.set_role(user.id, found.id, Some(role_of(role)?))
                .await?;
            println!("{email} is now {role} on {site}");
        }
        UserCommand::Revoke { email, site } => {
            let (user, found) = (
                admin::find_user(meta, email).await?,
                admin::find_site(meta, site).await?,
            );
            meta.set_role(user.id, found.id, None).await?;
            println!("{email} has no role on {site} any more");
        }
        UserCommand::Password {
            email,
            password_stdin,
        } => {
            let (password, generated) = password_from(*password_stdin)?;
            let user = admin::find_user(meta, email).await?;
            meta.set_password(user.id, &admin::hash_password(&password)?)
                .await?;
            print_new_password(email, generated.then_some(password.as_str()));
        }
        UserCommand::Remove { email } => {
            let user = admin::find_user(meta, email).await?;
            meta.remove_user(user.id).await?;
            println!("removed user {email}");
        }
    }
    Ok(())
}

fn print_added_user(user: &Value, generated: Option<&str>) {
    println!("added user {}", user["email"].as_str().unwrap_or_default());
    if let Some(password) = generated {
        println!("password (shown once): {password}");
    }
    eprintln!("they sign in at the server's /dashboard with this email and password");
}

fn print_new_password(email: &str, generated: Option<&str>) {
    println!("new password set for {email} (signed out everywhere)");
    if let Some(password) = generated {
        println!("password (shown once): {password}");
    }
}
