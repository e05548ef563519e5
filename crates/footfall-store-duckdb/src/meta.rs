//! `MetaStore` on DuckDB tables of the same file.

use crate::{DuckStore, db_err};
use async_trait::async_trait;
use duckdb::{OptionalExt, Row, params};
use footfall_core::identity::Salt;
use footfall_core::labels::LabelRule;
use footfall_core::query::{Goal, GoalKind};
use footfall_store::{
    ApiKey, DropCount, GoalRecord, IdentityMode, KeyScope, Membership, MetaStore, Role, Site,
    StoreError, StoreResult, User,
};

const SITE_COLUMNS: &str =
    "id, domain, timezone, identity_mode, session_timeout_secs, allowed_hostnames";

/// A site's goals in the order they were added.
fn goal_records(conn: &duckdb::Connection, site_id: u32) -> StoreResult<Vec<GoalRecord>> {
    let mut stmt = conn
        .prepare("SELECT id, kind, pattern, display_name FROM goals WHERE site_id = ? ORDER BY id")
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![site_id], |r| {
            let kind: String = r.get(1)?;
            Ok(GoalRecord {
                id: r.get(0)?,
                kind: if kind == "page" { "page" } else { "event" },
                pattern: r.get(2)?,
                display_name: r.get(3)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<Result<_, _>>().map_err(db_err)
}

fn site_from_row(r: &Row<'_>) -> duckdb::Result<Site> {
    let mode: String = r.get(3)?;
    let allowed: String = r.get(5)?;
    Ok(Site {
        id: r.get(0)?,
        domain: r.get(1)?,
        timezone: r.get(2)?,
        identity_mode: IdentityMode::parse(&mode).unwrap_or(IdentityMode::Cookieless),
        session_timeout_secs: r.get(4)?,
        allowed_hostnames: allowed
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

const KEY_SELECT: &str = "SELECT k.id, k.site_id, s.domain, k.scope, k.name, k.prefix, k.key_hash, \
     strftime(k.created_at, '%Y-%m-%dT%H:%M:%SZ'), k.revoked_at IS NOT NULL, k.usage_count, \
     strftime(k.last_used_at, '%Y-%m-%dT%H:%M:%SZ') \
     FROM api_keys k JOIN sites s ON s.id = k.site_id";

fn key_from_row(r: &Row<'_>) -> duckdb::Result<ApiKey> {
    let scope: String = r.get(3)?;
    Ok(ApiKey {
        id: r.get(0)?,
        site_id: r.get(1)?,
        site_domain: r.get(2)?,
        scope: KeyScope::parse(&scope).unwrap_or(KeyScope::Stats),
        name: r.get(4)?,
        prefix: r.get(5)?,
        key_hash: r.get(6)?,
        created_at: r.get(7)?,
        revoked: r.get(8)?,
        usage_count: r.get(9)?,
        last_used_at: r.get(10)?,
    })
}

#[async_trait]
impl MetaStore for DuckStore {
    async fn sites(&self) -> StoreResult<Vec<Site>> {
        self.blocking(|inner| {
            let conn = inner.meta.lock();
            let mut stmt = conn
                .prepare(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY domain"))
                .map_err(db_err)?;
            let rows = stmt.query_map([], site_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn add_site(&self, domain: &str, timezone: &str) -> StoreResult<Site> {
        let (domain, timezone) = (domain.to_owned(), timezone.to_owned());
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let exists: Option<u32> = conn
                .query_row(
                    "SELECT id FROM sites WHERE domain = ?",
                    params![domain],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!(
                    "site {domain} already exists"
                )));
            }
            conn.execute(
                "INSERT INTO sites (id, domain, timezone, created_at) \
                 SELECT coalesce(max(id), 0) + 1, ?, ?, now()::TIMESTAMP FROM sites",
                params![domain, timezone],
            )
            .map_err(db_err)?;
            conn.query_row(
                &format!("SELECT {SITE_COLUMNS} FROM sites WHERE domain = ?"),
                params![domain],
                site_from_row,
            )
            .map_err(db_err)
        })
        .await
    }

    async fn update_site(&self, site: &Site) -> StoreResult<()> {
        let site = site.clone();
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let n = conn
                .execute(
                    "UPDATE sites SET timezone = ?, identity_mode = ?, session_timeout_secs = ?, \
                     allowed_hostnames = ? WHERE id = ?",
                    params![
                        site.timezone,
                        site.identity_mode.as_str(),
                        site.session_timeout_secs,
                        site.allowed_hostnames.join(","),
                        site.id
                    ],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("site {}", site.domain)));
            }
            Ok(())
        })
        .await
    }

    async fn remove_site(&self, domain: &str) -> StoreResult<()> {
        let domain = domain.to_owned();
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let id: Option<u32> = conn
                .query_row(
                    "SELECT id FROM sites WHERE domain = ?",
                    params![domain],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let id = id.ok_or_else(|| StoreError::NotFound(format!("site {domain}")))?;
            for table in [
                "api_keys",
                "goals",
                "drop_counts",
                "label_rules",
                "memberships",
            ] {
                conn.execute(
                    &format!("DELETE FROM {table} WHERE site_id = ?"),
                    params![id],
                )
                .map_err(db_err)?;
            }
            conn.execute("DELETE FROM sites WHERE id = ?", params![id])
                .map_err(db_err)?;
            inner.goals.lock().remove(&id);
            Ok(())
        })
        .await
    }

    async fn keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.blocking(|inner| {
            let conn = inner.meta.lock();
            let mut stmt = conn
                .prepare(&format!("{KEY_SELECT} ORDER BY k.id"))
                .map_err(db_err)?;
            let rows = stmt.query_map([], key_from_row).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn add_key(
        &self,
        site_id: u32,
        scope: KeyScope,
        name: &str,
        prefix: &str,
        key_hash: &str,
    ) -> StoreResult<ApiKey> {
        let (name, prefix, key_hash) = (name.to_owned(), prefix.to_owned(), key_hash.to_owned());
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            conn.execute(
                "INSERT INTO api_keys (id, site_id, scope, name, prefix, key_hash, created_at) \
                 SELECT coalesce(max(id), 0) + 1, ?, ?, ?, ?, ?, now()::TIMESTAMP FROM api_keys",
                params![site_id, scope.as_str(), name, prefix, key_hash],
            )
            .map_err(db_err)?;
            conn.query_row(
                &format!("{KEY_SELECT} WHERE k.key_hash = ?"),
                params![key_hash],
                key_from_row,
            )
            .map_err(db_err)
        })
        .await
    }

    async fn revoke_key(&self, id: u32) -> StoreResult<()> {
        self.blocking(move |inner| {
            let n = inner
                .meta
                .lock()
                .execute(
                    "UPDATE api_keys SET revoked_at = now()::TIMESTAMP WHERE id = ? AND revoked_at IS NULL",
                    params![id],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("active key {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn record_key_usage(&self, id: u32, uses: u64, last_used_us: i64) -> StoreResult<()> {
        self.blocking(move |inner| {
            inner
                .meta
                .lock()
                .execute(
                    "UPDATE api_keys SET usage_count = usage_count + ?, \
                     last_used_at = make_timestamp(?::BIGINT) WHERE id = ?",
                    params![uses, last_used_us, id],
                )
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.blocking(|inner| {
            let conn = inner.meta.lock();
            let mut users: Vec<User> = conn
                .prepare("SELECT id, email, password_hash FROM users ORDER BY email")
                .and_then(|mut s| {
                    s.query_map([], |r| {
                        Ok(User {
                            id: r.get(0)?,
                            email: r.get(1)?,
                            password_hash: r.get(2)?,
                            sites: Vec::new(),
                        })
                    })?
                    .collect()
                })
                .map_err(db_err)?;
            let memberships: Vec<(u32, u32, String, String)> = conn
                .prepare(
                    "SELECT m.user_id, m.site_id, s.domain, m.role FROM memberships m \
                     JOIN sites s ON s.id = m.site_id ORDER BY s.domain",
                )
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                        .collect()
                })
                .map_err(db_err)?;
            for (user_id, site_id, site, role) in memberships {
                if let (Some(user), Some(role)) = (
                    users.iter_mut().find(|u| u.id == user_id),
                    Role::parse(&role),
                ) {
                    user.sites.push(Membership {
                        site_id,
                        site,
                        role,
                    });
                }
            }
            Ok(users)
        })
        .await
    }

    async fn add_user(&self, email: &str, password_hash: &str) -> StoreResult<User> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let taken: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM users WHERE email = ?",
                    params![email],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            if taken {
                return Err(StoreError::Conflict(format!("user {email} already exists")));
            }
            let id: u32 = conn
                .query_row(
                    "INSERT INTO users (id, email, password_hash, created_at) \
                     SELECT coalesce(max(id), 0) + 1, ?, ?, now()::TIMESTAMP FROM users \
                     RETURNING id",
                    params![email, hash],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(User {
                id,
                email,
                password_hash: hash,
                sites: Vec::new(),
            })
        })
        .await
    }

    async fn remove_user(&self, user_id: u32) -> StoreResult<()> {
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            for sql in [
                "DELETE FROM login_sessions WHERE user_id = ?",
                "DELETE FROM memberships WHERE user_id = ?",
            ] {
                conn.execute(sql, params![user_id]).map_err(db_err)?;
            }
            let n = conn
                .execute("DELETE FROM users WHERE id = ?", params![user_id])
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {user_id}")));
            }
            Ok(())
        })
        .await
    }

    async fn set_password(&self, user_id: u32, password_hash: &str) -> StoreResult<()> {
        let hash = password_hash.to_owned();
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                params![hash, user_id],
            )
            .map_err(db_err)?;
            // A new password signs the user out everywhere.
            conn.execute(
                "DELETE FROM login_sessions WHERE user_id = ?",
                params![user_id],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn set_role(&self, user_id: u32, site_id: u32, role: Option<Role>) -> StoreResult<()> {
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            conn.execute(
                "DELETE FROM memberships WHERE user_id = ? AND site_id = ?",
                params![user_id, site_id],
            )
            .map_err(db_err)?;
            if let Some(role) = role {
                conn.execute(
                    "INSERT INTO memberships (user_id, site_id, role) VALUES (?, ?, ?)",
                    params![user_id, site_id, role.as_str()],
                )
                .map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn login_sessions(&self) -> StoreResult<Vec<(String, u32, i64)>> {
        self.blocking(|inner| {
            let conn = inner.meta.lock();
            conn.execute(
                "DELETE FROM login_sessions WHERE expires_at < now()::TIMESTAMP",
                [],
            )
            .map_err(db_err)?;
            conn.prepare("SELECT token_hash, user_id, epoch_us(expires_at) FROM login_sessions")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(db_err)
        })
        .await
    }

    async fn add_login_session(
        &self,
        token_hash: &str,
        user_id: u32,
        expires_us: i64,
    ) -> StoreResult<()> {
        let hash = token_hash.to_owned();
        self.blocking(move |inner| {
            inner
                .meta
                .lock()
                .execute(
                    "INSERT INTO login_sessions VALUES (?, ?, make_timestamp(?))",
                    params![hash, user_id, expires_us],
                )
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn remove_login_session(&self, token_hash: &str) -> StoreResult<()> {
        let hash = token_hash.to_owned();
        self.blocking(move |inner| {
            inner
                .meta
                .lock()
                .execute(
                    "DELETE FROM login_sessions WHERE token_hash = ?",
                    params![hash],
                )
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn label_rules(&self) -> StoreResult<Vec<(u32, Vec<LabelRule>)>> {
        self.blocking(|inner| {
            let conn = inner.meta.lock();
            let mut stmt = conn
                .prepare("SELECT site_id, rules FROM label_rules ORDER BY site_id")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (site, json) = row.map_err(db_err)?;
                let rules = serde_json::from_str(&json).map_err(|e| {
                    StoreError::Backend(format!("label rules of site {site} are unreadable: {e}"))
                })?;
                out.push((site, rules));
            }
            Ok(out)
        })
        .await
    }

    async fn set_label_rules(&self, site_id: u32, rules: Vec<LabelRule>) -> StoreResult<()> {
        let json = serde_json::to_string(&rules)
            .map_err(|e| StoreError::Backend(format!("label rules: {e}")))?;
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            if rules.is_empty() {
                conn.execute(
                    "DELETE FROM label_rules WHERE site_id = ?",
                    params![site_id],
                )
            } else {
                conn.execute(
                    "INSERT OR REPLACE INTO label_rules VALUES (?, ?)",
                    params![site_id, json],
                )
            }
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn goal_records(&self, site_id: u32) -> StoreResult<Vec<GoalRecord>> {
        self.blocking(move |inner| goal_records(&inner.meta.lock(), site_id))
            .await
    }

    async fn add_goal(&self, site_id: u32, goal: Goal) -> StoreResult<GoalRecord> {
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let kind = match goal.kind {
                GoalKind::Page => "page",
                GoalKind::Event => "event",
            };
            let taken: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM goals WHERE site_id = ? AND display_name = ?",
                    params![site_id, goal.display_name],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "the site already has the goal {:?}",
                    goal.display_name
                )));
            }
            let id: u32 = conn
                .query_row(
                    "INSERT INTO goals (id, site_id, kind, pattern, display_name) \
                     SELECT coalesce(max(id), 0) + 1, ?, ?, ?, ? FROM goals RETURNING id",
                    params![site_id, kind, goal.pattern, goal.display_name],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            inner.goals.lock().remove(&site_id);
            Ok(GoalRecord {
                id,
                kind,
                pattern: goal.pattern,
                display_name: goal.display_name,
            })
        })
        .await
    }

    async fn remove_goal(&self, site_id: u32, id: u32) -> StoreResult<()> {
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let n = conn
                .execute(
                    "DELETE FROM goals WHERE site_id = ? AND id = ?",
                    params![site_id, id],
                )
                .map_err(db_err)?;
            inner.goals.lock().remove(&site_id);
            if n == 0 {
                return Err(StoreError::NotFound(format!("goal {id} of this site")));
            }
            Ok(())
        })
        .await
    }

    async fn goals(&self, site_id: u32) -> StoreResult<Vec<Goal>> {
        if let Some(goals) = self.inner.goals.lock().get(&site_id) {
            return Ok(goals.clone());
        }
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let goals: Vec<Goal> = goal_records(&conn, site_id)?
                .into_iter()
                .map(|g| Goal {
                    kind: if g.kind == "page" {
                        GoalKind::Page
                    } else {
                        GoalKind::Event
                    },
                    pattern: g.pattern,
                    display_name: g.display_name,
                })
                .collect();
            inner.goals.lock().insert(site_id, goals.clone());
            Ok(goals)
        })
        .await
    }

    async fn salts(&self) -> StoreResult<Vec<(i32, Salt)>> {
        self.blocking(|inner| {
            let conn = inner.meta.lock();
            let mut stmt = conn
                .prepare("SELECT (day - DATE '1970-01-01')::INTEGER, salt FROM salts ORDER BY day")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i32>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (day, bytes) = row.map_err(db_err)?;
                if let Ok(salt) = Salt::try_from(bytes.as_slice()) {
                    out.push((day, salt));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn put_salt(&self, day: i32, salt: Salt) -> StoreResult<()> {
        self.blocking(move |inner| {
            inner
                .meta
                .lock()
                .execute(
                    "INSERT OR IGNORE INTO salts VALUES (DATE '1970-01-01' + ?::INTEGER, ?)",
                    params![day, salt.to_vec()],
                )
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn delete_salts_before(&self, day: i32) -> StoreResult<()> {
        self.blocking(move |inner| {
            inner
                .meta
                .lock()
                .execute(
                    "DELETE FROM salts WHERE day < DATE '1970-01-01' + ?::INTEGER",
                    params![day],
                )
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn add_drops(&self, site_id: u32, reason: &str, count: u64) -> StoreResult<()> {
        let reason = reason.to_owned();
        self.blocking(move |inner| {
            inner
                .meta
                .lock()
                .execute(
                    "INSERT INTO drop_counts VALUES (?, ?, ?) ON CONFLICT (site_id, reason) \
                     DO UPDATE SET count = count + excluded.count",
                    params![site_id, reason, count],
                )
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn drops(&self, site_id: u32) -> StoreResult<Vec<DropCount>> {
        self.blocking(move |inner| {
            let conn = inner.meta.lock();
            let mut stmt = conn
                .prepare("SELECT reason, count FROM drop_counts WHERE site_id = ? ORDER BY reason")
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![site_id], |r| {
                    Ok(DropCount {
                        reason: r.get(0)?,
                        count: r.get(1)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }
}
