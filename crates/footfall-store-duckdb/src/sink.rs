//! `EventSink` on DuckDB: batches go in through the Appender inside one transaction that
//! also records the WAL position, so a replay after a crash never stores twice.

use crate::{DuckStore, Inner, db_err};
use async_trait::async_trait;
use duckdb::types::{TimeUnit, Value};
use duckdb::{Connection, params};
use footfall_core::{Event, VisitAttrs};
use footfall_store::{EventSink, RecentSession, StoreResult};

fn ts(us: i64) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, us)
}

fn append_events(conn: &Connection, events: &[Event]) -> duckdb::Result<()> {
    let mut app = conn.appender("events")?;
    for e in events {
        let v = &e.visit;
        app.append_row(params![
            e.site_id,
            ts(e.ts_us),
            e.event_id,
            e.client_id,
            e.visitor_id,
            e.session_id,
            ts(e.session_start_us),
            e.name,
            e.interactive,
            e.hostname,
            e.pathname,
            e.title,
            e.engagement_ms,
            e.scroll_depth,
            e.revenue_amount,
            e.revenue_currency,
            !e.props.is_empty(),
            v.entry_page,
            v.entry_hostname,
            v.referrer,
            v.source,
            v.channel,
            v.utm_source,
            v.utm_medium,
            v.utm_campaign,
            v.utm_content,
            v.utm_term,
            v.device,
            v.browser,
            v.browser_version,
            v.os,
            v.os_version,
            v.country,
            v.region,
            v.city,
            v.country_name,
            v.region_name,
            v.city_name,
            v.org,
        ])?;
    }
    app.flush()?;
    drop(app);
    if events.iter().any(|e| !e.props.is_empty()) {
        let mut props = conn.appender("event_props")?;
        for e in events {
            for (k, val) in &e.props {
                props.append_row(params![e.site_id, e.event_id, k, val])?;
            }
        }
        props.flush()?;
    }
    Ok(())
}

impl Inner {
    fn append_with_lsn(&self, events: &[Event], lsn: u64) -> StoreResult<()> {
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN TRANSACTION").map_err(db_err)?;
        let result = append_events(&conn, events).and_then(|()| {
            conn.execute(
                "INSERT OR REPLACE INTO wal_checkpoint VALUES (0, ?)",
                params![lsn],
            )
            .map(|_| ())
        });
        match result {
            Ok(()) => conn.execute_batch("COMMIT").map_err(db_err),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(db_err(e))
            }
        }
    }
}

const RECENT_SESSIONS_SQL: &str = "
WITH newest AS (SELECT site_id, max(ts) AS mx FROM events GROUP BY site_id)
SELECT e.site_id, e.visitor_id, e.session_id,
       epoch_us(min(e.session_start)), epoch_us(max(e.ts)),
       any_value(entry_page), any_value(entry_hostname), any_value(referrer), any_value(source),
       any_value(channel), any_value(utm_source), any_value(utm_medium), any_value(utm_campaign),
       any_value(utm_content), any_value(utm_term), any_value(device), any_value(browser),
       any_value(browser_version), any_value(os), any_value(os_version), any_value(country),
       any_value(region), any_value(city), any_value(country_name), any_value(region_name),
       any_value(city_name), any_value(org)
FROM events e JOIN newest n ON e.site_id = n.site_id
WHERE e.ts >= n.mx - to_seconds(?::BIGINT)
GROUP BY e.site_id, e.visitor_id, e.session_id";

#[async_trait]
impl EventSink for DuckStore {
    async fn append(&self, events: std::sync::Arc<Vec<Event>>, lsn: u64) -> StoreResult<()> {
        self.blocking(move |inner| inner.append_with_lsn(&events, lsn))
            .await
    }

    async fn checkpoint(&self) -> StoreResult<u64> {
        self.blocking(|inner| {
            let conn = inner.writer.lock();
            let lsn: Option<u64> = conn
                .query_row("SELECT max(lsn) FROM wal_checkpoint", [], |r| r.get(0))
                .map_err(db_err)?;
            Ok(lsn.unwrap_or(0))
        })
        .await
    }

    async fn client_event_ids(&self) -> StoreResult<Vec<u64>> {
        self.blocking(|inner| {
            inner.with_reader(|conn| {
                // Column batches, not rows: start-up reads every client id (10M rows: ~3 s
                // row by row).
                let mut stmt = conn
                    .prepare("SELECT event_id FROM events WHERE client_id")
                    .map_err(db_err)?;
                let mut ids = Vec::new();
                for batch in stmt.query_arrow([]).map_err(db_err)? {
                    let column = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<duckdb::arrow::array::UInt64Array>()
                        .ok_or_else(|| {
                            footfall_store::StoreError::Backend("event_id is not UBIGINT".into())
                        })?;
                    ids.extend(column.values().iter().copied());
                }
                Ok(ids)
            })
        })
        .await
    }

    async fn recent_sessions(&self, window_secs: u32) -> StoreResult<Vec<RecentSession>> {
        self.blocking(move |inner| {
            inner.with_reader(|conn| {
                let mut stmt = conn.prepare(RECENT_SESSIONS_SQL).map_err(db_err)?;
                let rows = stmt
                    .query_map(params![i64::from(window_secs)], |r| {
                        let visit = VisitAttrs {
                            entry_page: r.get(5)?,
                            entry_hostname: r.get(6)?,
                            referrer: r.get(7)?,
                            source: r.get(8)?,
                            channel: r.get(9)?,
                            utm_source: r.get(10)?,
                            utm_medium: r.get(11)?,
                            utm_campaign: r.get(12)?,
                            utm_content: r.get(13)?,
                            utm_term: r.get(14)?,
                            device: r.get(15)?,
                            browser: r.get(16)?,
                            browser_version: r.get(17)?,
                            os: r.get(18)?,
                            os_version: r.get(19)?,
                            country: r.get(20)?,
                            region: r.get(21)?,
                            city: r.get(22)?,
                            country_name: r.get(23)?,
                            region_name: r.get(24)?,
                            city_name: r.get(25)?,
                            org: r.get(26)?,
                        };
                        let start_us: i64 = r.get(3)?;
                        let last_us: i64 = r.get(4)?;
                        Ok(RecentSession {
                            site_id: r.get(0)?,
                            event: Event {
                                site_id: r.get(0)?,
                                visitor_id: r.get(1)?,
                                session_id: r.get(2)?,
                                session_start_us: start_us,
                                ts_us: last_us,
                                visit: std::sync::Arc::new(visit),
                                ..Event::default()
                            },
                            start_us,
                            last_us,
                        })
                    })
                    .map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
            })
        })
        .await
    }

    async fn delete_before(&self, site_id: u32, before_us: i64) -> StoreResult<u64> {
        self.blocking(move |inner| {
            let conn = inner.writer.lock();
            conn.execute(
                "DELETE FROM event_props WHERE site_id = ? AND event_id IN \
                 (SELECT event_id FROM events WHERE site_id = ? AND ts < ?)",
                params![site_id, site_id, ts(before_us)],
            )
            .map_err(db_err)?;
            let n = conn
                .execute(
                    "DELETE FROM events WHERE site_id = ? AND ts < ?",
                    params![site_id, ts(before_us)],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn erase_visitor(&self, site_id: u32, visitor_id: u64) -> StoreResult<u64> {
        self.blocking(move |inner| {
            let conn = inner.writer.lock();
            conn.execute(
                "DELETE FROM event_props WHERE site_id = ? AND event_id IN \
                 (SELECT event_id FROM events WHERE site_id = ? AND visitor_id = ?)",
                params![site_id, site_id, visitor_id],
            )
            .map_err(db_err)?;
            let n = conn
                .execute(
                    "DELETE FROM events WHERE site_id = ? AND visitor_id = ?",
                    params![site_id, visitor_id],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn delete_site_events(&self, site_id: u32) -> StoreResult<()> {
        self.blocking(move |inner| {
            let conn = inner.writer.lock();
            conn.execute(
                "DELETE FROM event_props WHERE site_id = ?",
                params![site_id],
            )
            .map_err(db_err)?;
            conn.execute("DELETE FROM events WHERE site_id = ?", params![site_id])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
