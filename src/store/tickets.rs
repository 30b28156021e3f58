//! Persistence of excavation tickets (issue 4): the [`TicketStore`] sub-trait of
//! [`Store`](super::Store) and its two implementations, over the `excavation_tickets` table
//! of migration 0002 (SQL in `tickets_postgis.sql` / `tickets_gpkg.sql`).
//!
//! A ticket is stored as one JSON document plus the columns that are filtered or kept
//! unique. Every write is one transaction that also appends the audit entry, so the audit
//! log holds every state change. Saves are optimistic: a save names the version it read,
//! and a concurrent change makes it a `Conflict` instead of a lost update. Submission is
//! idempotent per (submitter, `Idempotency-Key`): a second insert with the same key writes
//! nothing and returns the first ticket.

use super::gpkg::GpkgStore;
use super::postgis::PostgisStore;
use super::{StoreError, StoreResult};
use crate::excavation::tickets::{Ticket, TicketState};
use crate::model::Actor;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Which tickets a list returns.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only this submitter's (a contractor's own); `None`: everyone's.
    pub submitted_by: Option<String>,
    pub state: Option<TicketState>,
    pub limit: usize,
    pub offset: usize,
}

/// Ticket persistence; see the module docs for the contract.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Inserts `t` (its id is assigned) and audits the submission; or, when the submitter
    /// already has a ticket with the same idempotency key, writes nothing and returns that
    /// ticket. The flag says whether a ticket was created.
    async fn create_ticket(&self, t: &Ticket, actor: &Actor) -> StoreResult<(Ticket, bool)>;

    /// One ticket by id.
    async fn ticket(&self, id: i64) -> StoreResult<Option<Ticket>>;

    /// Tickets newest first.
    async fn tickets(&self, filter: &TicketFilter) -> StoreResult<Vec<Ticket>>;

    /// Saves a changed ticket if the stored one still has version `t.version` (what the
    /// caller read), and audits `action` with `detail`; returns it with the new version.
    /// A concurrent change is a `Conflict`; a missing ticket `NotFound`-like `Conflict`.
    async fn save_ticket(
        &self,
        t: &Ticket,
        actor: &Actor,
        action: &str,
        detail: serde_json::Value,
    ) -> StoreResult<Ticket>;
}

fn queries(text: &'static str) -> HashMap<&'static str, &'static str> {
    let mut out = HashMap::new();
    const MARK: &str = "-- name:";
    let mut rest = text;
    while let Some(start) = rest.find(MARK) {
        let after = &rest[start + MARK.len()..];
        let (name, body) = after.split_once('\n').unwrap_or((after, ""));
        let end = body.find(MARK).unwrap_or(body.len());
        out.insert(name.trim(), body[..end].trim());
        rest = &body[end..];
    }
    out
}

fn pg_sql(name: &str) -> &'static str {
    static Q: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    Q.get_or_init(|| queries(include_str!("tickets_postgis.sql")))
        .get(name)
        .copied()
        .unwrap_or_else(|| panic!("tickets_postgis.sql has no query {name}"))
}

fn gpkg_sql(name: &str) -> &'static str {
    static Q: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    Q.get_or_init(|| queries(include_str!("tickets_gpkg.sql")))
        .get(name)
        .copied()
        .unwrap_or_else(|| panic!("tickets_gpkg.sql has no query {name}"))
}

fn decode(doc: serde_json::Value) -> StoreResult<Ticket> {
    serde_json::from_value(doc)
        .map_err(|e| StoreError::Backend(format!("stored ticket does not decode: {e}")))
}

fn encode(t: &Ticket) -> StoreResult<serde_json::Value> {
    serde_json::to_value(t).map_err(|e| StoreError::Backend(e.to_string()))
}

fn stale(id: i64) -> StoreError {
    StoreError::Conflict(format!(
        "ticket {id} was changed by someone else meanwhile (or does not exist); read it again and retry"
    ))
}

fn submit_detail(t: &Ticket) -> serde_json::Value {
    serde_json::json!({
        "state": t.state, "ticket_type": t.ticket_type, "owners": t.owners.len(),
        "idempotency_key": t.idempotency_key,
        "work_type": t.request.work_type, "start_date": t.request.start_date,
        "end_date": t.request.end_date, "geometry": t.request.geometry
    })
}

// ---------------------------------------------------------------------------------------
// PostGIS
// ---------------------------------------------------------------------------------------

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl TicketStore for PostgisStore {
    async fn create_ticket(&self, t: &Ticket, actor: &Actor) -> StoreResult<(Ticket, bool)> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                pg_sql("insert"),
                &[
                    &t.submitted_by,
                    &t.idempotency_key,
                    &t.request_hash,
                    &t.state.as_str(),
                    &t.created_at,
                    &encode(t)?,
                    &actor.name,
                    &actor.role.as_str(),
                    &submit_detail(t),
                ],
            )
            .await
            .map_err(pg_err)?;
        if let Some(row) = row {
            let mut stored = t.clone();
            stored.id = row.try_get(0).map_err(pg_err)?;
            return Ok((stored, true));
        }
        // The key was used before (maybe by a concurrent request that just committed: the
        // insert waited for it, and this statement's snapshot sees it).
        let row = client
            .query_one(pg_sql("by_key"), &[&t.submitted_by, &t.idempotency_key])
            .await
            .map_err(pg_err)?;
        Ok((pg_ticket(&row)?, false))
    }

    async fn ticket(&self, id: i64) -> StoreResult<Option<Ticket>> {
        let client = self.client().await?;
        let row = client
            .query_opt(pg_sql("get"), &[&id])
            .await
            .map_err(pg_err)?;
        row.as_ref().map(pg_ticket).transpose()
    }

    async fn tickets(&self, f: &TicketFilter) -> StoreResult<Vec<Ticket>> {
        let client = self.client().await?;
        let state = f.state.map(|s| s.as_str().to_string());
        let rows = client
            .query(
                pg_sql("list"),
                &[
                    &f.submitted_by,
                    &state,
                    &(f.limit as i64),
                    &(f.offset as i64),
                ],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(pg_ticket).collect()
    }

    async fn save_ticket(
        &self,
        t: &Ticket,
        actor: &Actor,
        action: &str,
        detail: serde_json::Value,
    ) -> StoreResult<Ticket> {
        let client = self.client().await?;
        let mut next = t.clone();
        next.version = t.version + 1;
        let row = client
            .query_opt(
                pg_sql("save"),
                &[
                    &t.id,
                    &t.version,
                    &t.state.as_str(),
                    &t.updated_at,
                    &encode(&next)?,
                    &actor.name,
                    &actor.role.as_str(),
                    &action,
                    &detail,
                ],
            )
            .await
            .map_err(pg_err)?;
        match row {
            Some(_) => Ok(next),
            None => Err(stale(t.id)),
        }
    }
}

/// A ticket from an `id, doc` row: the id is the column's (the document is stored before
/// the id is assigned).
fn pg_ticket(row: &tokio_postgres::Row) -> StoreResult<Ticket> {
    let mut t = decode(row.try_get(1).map_err(pg_err)?)?;
    t.id = row.try_get(0).map_err(pg_err)?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------
// GeoPackage
// ---------------------------------------------------------------------------------------

fn sq(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The GeoPackage DATETIME form (milliseconds, `Z`), as the rest of the file uses.
fn stamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn gpkg_decode(text: String) -> StoreResult<Ticket> {
    decode(serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?)
}

fn gpkg_audit(
    conn: &rusqlite::Connection,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &serde_json::Value,
) -> StoreResult<()> {
    conn.prepare_cached(gpkg_sql("audit"))
        .map_err(sq)?
        .execute(rusqlite::params![
            stamp(&chrono::Utc::now()),
            actor.name,
            actor.role.as_str(),
            action,
            target,
            detail.to_string()
        ])
        .map_err(sq)?;
    Ok(())
}

#[async_trait]
impl TicketStore for GpkgStore {
    async fn create_ticket(&self, t: &Ticket, actor: &Actor) -> StoreResult<(Ticket, bool)> {
        let (t, actor) = (t.clone(), actor.clone());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sq)?;
            let n = tx
                .prepare_cached(gpkg_sql("insert"))
                .map_err(sq)?
                .execute(rusqlite::params![
                    t.submitted_by,
                    t.idempotency_key,
                    t.request_hash,
                    t.state.as_str(),
                    stamp(&t.created_at),
                    encode(&t)?.to_string()
                ])
                .map_err(sq)?;
            if n == 0 {
                let doc: String = tx
                    .query_row(
                        gpkg_sql("by_key"),
                        rusqlite::params![t.submitted_by, t.idempotency_key],
                        |r| r.get(0),
                    )
                    .map_err(sq)?;
                return Ok((gpkg_decode(doc)?, false));
            }
            let mut stored = t.clone();
            stored.id = tx.last_insert_rowid();
            tx.execute(
                gpkg_sql("set_doc"),
                rusqlite::params![stored.id, encode(&stored)?.to_string()],
            )
            .map_err(sq)?;
            gpkg_audit(
                &tx,
                &actor,
                "ticket_submit",
                &format!("excavation_tickets/{}", stored.id),
                &submit_detail(&stored),
            )?;
            tx.commit().map_err(sq)?;
            Ok((stored, true))
        })
        .await
    }

    async fn ticket(&self, id: i64) -> StoreResult<Option<Ticket>> {
        self.read(move |conn| {
            use rusqlite::OptionalExtension;
            let doc: Option<String> = conn
                .query_row(gpkg_sql("get"), [id], |r| r.get(0))
                .optional()
                .map_err(sq)?;
            doc.map(gpkg_decode).transpose()
        })
        .await
    }

    async fn tickets(&self, f: &TicketFilter) -> StoreResult<Vec<Ticket>> {
        let f = f.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(gpkg_sql("list")).map_err(sq)?;
            let rows = stmt
                .query_map(
                    rusqlite::params![
                        f.submitted_by,
                        f.state.map(|s| s.as_str()),
                        f.limit as i64,
                        f.offset as i64
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(sq)?;
            rows.map(|r| gpkg_decode(r.map_err(sq)?)).collect()
        })
        .await
    }

    async fn save_ticket(
        &self,
        t: &Ticket,
        actor: &Actor,
        action: &str,
        detail: serde_json::Value,
    ) -> StoreResult<Ticket> {
        let (t, actor, action) = (t.clone(), actor.clone(), action.to_string());
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sq)?;
            let mut next = t.clone();
            next.version = t.version + 1;
            let n = tx
                .prepare_cached(gpkg_sql("save"))
                .map_err(sq)?
                .execute(rusqlite::params![
                    t.id,
                    t.version,
                    t.state.as_str(),
                    stamp(&t.updated_at),
                    encode(&next)?.to_string()
                ])
                .map_err(sq)?;
            if n != 1 {
                return Err(stale(t.id));
            }
            gpkg_audit(
                &tx,
                &actor,
                &action,
                &format!("excavation_tickets/{}", t.id),
                &detail,
            )?;
            tx.commit().map_err(sq)?;
            Ok(next)
        })
        .await
    }
}
