//! Persistence of excavation tickets (issue 4): the [`TicketStore`] sub-trait of
//! [`Store`](super::Store) and its two implementations, over the `excavation_tickets` table
//! of migration 0002 (SQL in `tickets_postgis.sql` / `tickets_gpkg.sql`).
//!
//! A ticket is stored as one JSON document (on PostGIS a `json` column, LZ4-compressed,
//! migration 0007: SQL never looks inside it) plus the columns that are filtered or kept
//! unique. Every write is one transaction that also appends the audit entry, so the audit
//! log holds every state change; a submission also writes its owners' notifications in
//! the same transaction ([`TicketStore::submit_ticket`]). Saves are optimistic: a save
//! names the version it read, and a concurrent change makes it a `Conflict` instead of a
//! lost update. Submission is idempotent per (submitter, `Idempotency-Key`): a second
//! insert with the same key writes nothing and returns the first ticket.
//!
//! The owners' notification outbox (`notification_outbox`, `owner_channels`, migration
//! 0005; see the excavation capability's `notify`) lives here too: each new notification and each
//! delivery outcome is written together with its audit entry.

use super::gpkg::{begin, GpkgStore, SqlExt};
use super::postgis::PostgisStore;
use super::{backend_error, BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::notification::{
    Channel, DeliveryStatus, Draft, NewNotification, Notification, NotificationFilter,
    NotificationOutcome, OwnerChannels,
};
use lifeline_model::ticket::{Ticket, TicketFilter};
use lifeline_model::Actor;

/// What [`TicketStore::submit_ticket`] did.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The new ticket, or the earlier one with the same idempotency key.
    pub ticket: Ticket,
    /// False: an earlier submission with the same key, returned unchanged.
    pub created: bool,
    /// Webhook notifications written now.
    pub webhooks: usize,
}

/// Ticket persistence; see the module docs for the contract.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Inserts `t` (its id is assigned) and audits the submission, and writes its owners'
    /// notifications (`drafts` resolved against the registered channels as they stand in
    /// the same transaction, [`Draft::resolve`]) each with its audit entry: all or nothing,
    /// one transaction. When the submitter already has a ticket with the same idempotency
    /// key it writes nothing and returns that ticket. Returns the ticket, whether it was
    /// created, and how many webhook notifications were written (to wake the worker).
    async fn submit_ticket(
        &self,
        t: Ticket,
        drafts: Vec<Draft>,
        actor: &Actor,
    ) -> StoreResult<Submitted>;

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

    /// The registered notification channels of these owners (owners without any are absent).
    async fn owner_channels(&self, owner_ids: &[i64]) -> StoreResult<Vec<OwnerChannels>>;

    /// Registers (replaces) an owner's notification channels at `now`, audited.
    async fn set_owner_channels(
        &self,
        c: &OwnerChannels,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Writes new notifications to the outbox at `now`, each with an audit entry; ones
    /// already there (same ticket, owner and channel) are skipped. Returns those written.
    async fn enqueue_notifications(
        &self,
        list: &[NewNotification],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Notification>>;

    /// Notifications, oldest first.
    async fn notifications(&self, f: &NotificationFilter) -> StoreResult<Vec<Notification>>;

    /// Reserves up to `limit` pending webhooks due at `now` until `until` (counting the
    /// attempt) and returns them.
    async fn claim_webhooks(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Notification>>;

    /// Records the outcome of a pending notification at `now`, audited; `None` when there
    /// is no pending notification `id`.
    async fn finish_notification(
        &self,
        id: i64,
        outcome: &NotificationOutcome,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Notification>>;
}

crate::sqlfile::named_sql!(fn pg_sql = "tickets_postgis.sql", include_str!("tickets_postgis.sql"));

crate::sqlfile::named_sql!(fn gpkg_sql = "tickets_gpkg.sql", include_str!("tickets_gpkg.sql"));

fn decode(doc: serde_json::Value) -> StoreResult<Ticket> {
    serde_json::from_value(doc).map_err(|e| {
        StoreError::Backend(BackendError::with_source(
            format!("stored ticket does not decode: {e}"),
            e,
        ))
    })
}

/// A ticket as the JSON text the GeoPackage store keeps (written straight to text: a
/// `serde_json::Value` tree in between was most of a submission's allocations).
fn encode(t: &Ticket) -> StoreResult<String> {
    serde_json::to_string(t).map_err(backend_error)
}

/// A ticket as a PostGIS `jsonb` parameter, serialised straight into the wire buffer.
fn pg_doc(t: &Ticket) -> tokio_postgres::types::Json<&Ticket> {
    tokio_postgres::types::Json(t)
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

#[async_trait]
impl TicketStore for PostgisStore {
    async fn submit_ticket(
        &self,
        t: Ticket,
        drafts: Vec<Draft>,
        actor: &Actor,
    ) -> StoreResult<Submitted> {
        let client = self.client().await?;
        // Prepared once per pooled connection: no parse, analysis and planning of this CTE
        // and no extra round trip per submission.
        let submit = client
            .prepare_cached(pg_sql("submit"))
            .await
            .map_err(backend_error)?;
        let row = client
            .query_opt(
                &submit,
                &[
                    &t.submitted_by,
                    &t.idempotency_key,
                    &t.request_hash,
                    &t.state.as_str(),
                    &t.created_at,
                    &pg_doc(&t),
                    &actor.name,
                    &actor.role.as_str(),
                    &submit_detail(&t),
                    &tokio_postgres::types::Json(&drafts),
                ],
            )
            .await
            .map_err(backend_error)?;
        if let Some(row) = row {
            let mut stored = t;
            stored.id = row.try_get(0).map_err(backend_error)?;
            let webhooks: i64 = row.try_get(1).map_err(backend_error)?;
            return Ok(Submitted {
                ticket: stored,
                created: true,
                webhooks: webhooks as usize,
            });
        }
        // The key was used before (maybe by a concurrent request that just committed: the
        // insert waited for it, and this statement's snapshot sees it).
        let by_key = client
            .prepare_cached(pg_sql("by_key"))
            .await
            .map_err(backend_error)?;
        let row = client
            .query_one(&by_key, &[&t.submitted_by, &t.idempotency_key])
            .await
            .map_err(backend_error)?;
        Ok(Submitted {
            ticket: pg_ticket(&row)?,
            created: false,
            webhooks: 0,
        })
    }

    async fn ticket(&self, id: i64) -> StoreResult<Option<Ticket>> {
        let client = self.client().await?;
        let get = client
            .prepare_cached(pg_sql("get"))
            .await
            .map_err(backend_error)?;
        let row = client
            .query_opt(&get, &[&id])
            .await
            .map_err(backend_error)?;
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
            .map_err(backend_error)?;
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
        let save = client
            .prepare_cached(pg_sql("save"))
            .await
            .map_err(backend_error)?;
        let row = client
            .query_opt(
                &save,
                &[
                    &t.id,
                    &t.version,
                    &t.state.as_str(),
                    &t.updated_at,
                    &pg_doc(&next),
                    &actor.name,
                    &actor.role.as_str(),
                    &action,
                    &detail,
                ],
            )
            .await
            .map_err(backend_error)?;
        match row {
            Some(_) => Ok(next),
            None => Err(stale(t.id)),
        }
    }

    async fn owner_channels(&self, owner_ids: &[i64]) -> StoreResult<Vec<OwnerChannels>> {
        if owner_ids.is_empty() {
            return Ok(vec![]);
        }
        let client = self.client().await?;
        let rows = client
            .query(pg_sql("channels"), &[&owner_ids])
            .await
            .map_err(backend_error)?;
        rows.iter()
            .map(|r| {
                Ok(OwnerChannels {
                    owner_id: r.try_get(0).map_err(backend_error)?,
                    webhook_url: r.try_get(1).map_err(backend_error)?,
                    email: r.try_get(2).map_err(backend_error)?,
                    sms: r.try_get(3).map_err(backend_error)?,
                })
            })
            .collect()
    }

    async fn set_owner_channels(
        &self,
        c: &OwnerChannels,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .execute(
                pg_sql("set_channels"),
                &[
                    &c.owner_id,
                    &c.webhook_url,
                    &c.email,
                    &c.sms,
                    &actor.name,
                    &actor.role.as_str(),
                    &channels_detail(c),
                    &now,
                ],
            )
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn enqueue_notifications(
        &self,
        list: &[NewNotification],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Notification>> {
        if list.is_empty() {
            return Ok(vec![]);
        }
        let client = self.client().await?;
        let input = serde_json::to_value(list).map_err(backend_error)?;
        let rows = client
            .query(
                pg_sql("enqueue"),
                &[&input, &now, &actor.name, &actor.role.as_str()],
            )
            .await
            .map_err(backend_error)?;
        rows.iter().map(pg_notification).collect()
    }

    async fn notifications(&self, f: &NotificationFilter) -> StoreResult<Vec<Notification>> {
        let client = self.client().await?;
        let status = f.status.map(|s| s.as_str().to_string());
        let rows = client
            .query(
                pg_sql("notifications"),
                &[&f.ticket_id, &status, &f.id, &(f.limit as i64)],
            )
            .await
            .map_err(backend_error)?;
        rows.iter().map(pg_notification).collect()
    }

    async fn claim_webhooks(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Notification>> {
        let client = self.client().await?;
        let rows = client
            .query(pg_sql("claim"), &[&now, &until, &(limit as i64)])
            .await
            .map_err(backend_error)?;
        rows.iter().map(pg_notification).collect()
    }

    async fn finish_notification(
        &self,
        id: i64,
        outcome: &NotificationOutcome,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Notification>> {
        let client = self.client().await?;
        let (status, error, retry_at, action) = outcome.parts();
        let delivered_at = (status == DeliveryStatus::Delivered).then_some(now);
        let detail = serde_json::json!({"status": status, "error": error, "retry_at": retry_at});
        let row = client
            .query_opt(
                pg_sql("finish"),
                &[
                    &id,
                    &status.as_str(),
                    &error,
                    &retry_at,
                    &delivered_at,
                    &now,
                    &actor.name,
                    &actor.role.as_str(),
                    &action,
                    &detail,
                ],
            )
            .await
            .map_err(backend_error)?;
        row.as_ref().map(pg_notification).transpose()
    }
}

fn channels_detail(c: &OwnerChannels) -> serde_json::Value {
    // The URL may carry the owner's token: the audit says whether one is set, not what.
    serde_json::json!({
        "webhook": c.webhook_url.is_some(), "email": c.email, "sms": c.sms
    })
}

fn parse_enum<T: std::str::FromStr>(v: &str) -> StoreResult<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    v.parse::<T>().map_err(|e| {
        StoreError::Backend(BackendError::with_source(
            format!("stored notification: {e}"),
            e,
        ))
    })
}

fn pg_notification(r: &tokio_postgres::Row) -> StoreResult<Notification> {
    let channel: String = r.try_get(3).map_err(backend_error)?;
    let status: String = r.try_get(7).map_err(backend_error)?;
    Ok(Notification {
        id: r.try_get(0).map_err(backend_error)?,
        ticket_id: r.try_get(1).map_err(backend_error)?,
        owner_id: r.try_get(2).map_err(backend_error)?,
        channel: parse_enum::<Channel>(&channel)?,
        address: r.try_get(4).map_err(backend_error)?,
        message: r.try_get(5).map_err(backend_error)?,
        due_at: r.try_get(6).map_err(backend_error)?,
        status: parse_enum::<DeliveryStatus>(&status)?,
        attempts: r.try_get(8).map_err(backend_error)?,
        last_error: r.try_get(9).map_err(backend_error)?,
        next_attempt_at: r.try_get(10).map_err(backend_error)?,
        created_at: r.try_get(11).map_err(backend_error)?,
        updated_at: r.try_get(12).map_err(backend_error)?,
        delivered_at: r.try_get(13).map_err(backend_error)?,
    })
}

/// A ticket from an `id, doc` row: the id is the column's (the document is stored before
/// the id is assigned).
fn pg_ticket(row: &tokio_postgres::Row) -> StoreResult<Ticket> {
    let mut t = decode(row.try_get(1).map_err(backend_error)?)?;
    t.id = row.try_get(0).map_err(backend_error)?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------
// GeoPackage
// ---------------------------------------------------------------------------------------

/// The GeoPackage DATETIME form (milliseconds, `Z`), as the rest of the file uses.
fn stamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn gpkg_decode(text: String) -> StoreResult<Ticket> {
    decode(serde_json::from_str(&text).map_err(backend_error)?)
}

fn gpkg_audit(
    conn: &rusqlite::Connection,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &serde_json::Value,
) -> StoreResult<()> {
    // The audit entry's commit stamp, as PostGIS's `DEFAULT now()` records it there: the
    // store's own time, which no rule compares with the service clock.
    conn.prepare_cached(gpkg_sql("audit"))
        .sql()?
        .execute(rusqlite::params![
            stamp(&chrono::Utc::now()),
            actor.name,
            actor.role.as_str(),
            action,
            target,
            detail.to_string()
        ])
        .sql()?;
    Ok(())
}

/// An owner's registered channels, if any.
fn gpkg_channel(conn: &rusqlite::Connection, owner_id: i64) -> StoreResult<Option<OwnerChannels>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(gpkg_sql("channel"))
        .sql()?
        .query_row([owner_id], |r| {
            Ok(OwnerChannels {
                owner_id: r.get(0)?,
                webhook_url: r.get(1)?,
                email: r.get(2)?,
                sms: r.get(3)?,
            })
        })
        .optional()
        .sql()
}

/// Writes new notifications (skipping ones the outbox holds), each with its audit entry,
/// in the caller's transaction; returns those written.
fn gpkg_enqueue(
    tx: &rusqlite::Transaction<'_>,
    list: &[NewNotification],
    actor: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Notification>> {
    use rusqlite::OptionalExtension;
    let now = stamp(&now);
    let mut out = Vec::new();
    for n in list {
        let row = tx
            .prepare_cached(gpkg_sql("enqueue"))
            .sql()?
            .query_row(
                rusqlite::params![
                    n.ticket_id,
                    n.owner_id,
                    n.channel.as_str(),
                    n.address,
                    n.message,
                    stamp(&n.due_at),
                    now
                ],
                gpkg_notification_row,
            )
            .optional()
            .sql()?;
        if let Some(row) = row {
            let stored = gpkg_notification(row)?;
            gpkg_audit(
                tx,
                actor,
                "notification_created",
                &format!("notification_outbox/{}", stored.id),
                &serde_json::json!({"ticket_id": stored.ticket_id, "owner_id": stored.owner_id,
                    "channel": stored.channel, "due_at": stored.due_at}),
            )?;
            out.push(stored);
        }
    }
    Ok(out)
}

#[async_trait]
impl TicketStore for GpkgStore {
    async fn submit_ticket(
        &self,
        t: Ticket,
        drafts: Vec<Draft>,
        actor: &Actor,
    ) -> StoreResult<Submitted> {
        let actor = actor.clone();
        self.write(move |conn| {
            let tx = begin(conn)?;
            let n = tx
                .prepare_cached(gpkg_sql("insert"))
                .sql()?
                .execute(rusqlite::params![
                    t.submitted_by,
                    t.idempotency_key,
                    t.request_hash,
                    t.state.as_str(),
                    stamp(&t.created_at),
                    encode(&t)?
                ])
                .sql()?;
            if n == 0 {
                let doc: String = tx
                    .query_row(
                        gpkg_sql("by_key"),
                        rusqlite::params![t.submitted_by, t.idempotency_key],
                        |r| r.get(0),
                    )
                    .sql()?;
                return Ok(Submitted {
                    ticket: gpkg_decode(doc)?,
                    created: false,
                    webhooks: 0,
                });
            }
            let mut stored = t;
            stored.id = tx.last_insert_rowid();
            tx.execute(
                gpkg_sql("set_doc"),
                rusqlite::params![stored.id, encode(&stored)?],
            )
            .sql()?;
            gpkg_audit(
                &tx,
                &actor,
                "ticket_submit",
                &format!("excavation_tickets/{}", stored.id),
                &submit_detail(&stored),
            )?;
            // The owners' channels as this transaction sees them (the write lock is held).
            let mut list = Vec::new();
            for d in &drafts {
                let c = gpkg_channel(&tx, d.owner_id)?;
                list.extend(d.resolve(stored.id, c.as_ref()));
            }
            let written = gpkg_enqueue(&tx, &list, &actor, stored.created_at)?;
            tx.commit().sql()?;
            Ok(Submitted {
                ticket: stored,
                created: true,
                webhooks: written
                    .iter()
                    .filter(|n| n.channel == Channel::Webhook)
                    .count(),
            })
        })
        .await
    }

    async fn ticket(&self, id: i64) -> StoreResult<Option<Ticket>> {
        self.read(move |conn| {
            use rusqlite::OptionalExtension;
            let doc: Option<String> = conn
                .query_row(gpkg_sql("get"), [id], |r| r.get(0))
                .optional()
                .sql()?;
            doc.map(gpkg_decode).transpose()
        })
        .await
    }

    async fn tickets(&self, f: &TicketFilter) -> StoreResult<Vec<Ticket>> {
        let f = f.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(gpkg_sql("list")).sql()?;
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
                .sql()?;
            rows.map(|r| gpkg_decode(r.sql()?)).collect()
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
            let tx = begin(conn)?;
            let mut next = t.clone();
            next.version = t.version + 1;
            let n = tx
                .prepare_cached(gpkg_sql("save"))
                .sql()?
                .execute(rusqlite::params![
                    t.id,
                    t.version,
                    t.state.as_str(),
                    stamp(&t.updated_at),
                    encode(&next)?
                ])
                .sql()?;
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
            tx.commit().sql()?;
            Ok(next)
        })
        .await
    }
    async fn owner_channels(&self, owner_ids: &[i64]) -> StoreResult<Vec<OwnerChannels>> {
        if owner_ids.is_empty() {
            return Ok(vec![]);
        }
        let ids = owner_ids.to_vec();
        self.read(move |conn| {
            let mut out = Vec::new();
            for id in ids {
                out.extend(gpkg_channel(conn, id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn set_owner_channels(
        &self,
        c: &OwnerChannels,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (c, actor) = (c.clone(), actor.clone());
        self.write(move |conn| {
            let tx = begin(conn)?;
            tx.execute(
                gpkg_sql("set_channels"),
                rusqlite::params![c.owner_id, c.webhook_url, c.email, c.sms, stamp(&now)],
            )
            .sql()?;
            gpkg_audit(
                &tx,
                &actor,
                "owner_channels_set",
                &format!("owners/{}", c.owner_id),
                &channels_detail(&c),
            )?;
            tx.commit().sql()
        })
        .await
    }

    async fn enqueue_notifications(
        &self,
        list: &[NewNotification],
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Notification>> {
        if list.is_empty() {
            return Ok(vec![]);
        }
        let (list, actor) = (list.to_vec(), actor.clone());
        self.write(move |conn| {
            let tx = begin(conn)?;
            let out = gpkg_enqueue(&tx, &list, &actor, now)?;
            tx.commit().sql()?;
            Ok(out)
        })
        .await
    }

    async fn notifications(&self, f: &NotificationFilter) -> StoreResult<Vec<Notification>> {
        let f = f.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(gpkg_sql("notifications")).sql()?;
            let rows = stmt
                .query_map(
                    rusqlite::params![
                        f.ticket_id,
                        f.status.map(|s| s.as_str()),
                        f.id,
                        f.limit as i64
                    ],
                    gpkg_notification_row,
                )
                .sql()?;
            rows.map(|r| gpkg_notification(r.sql()?)).collect()
        })
        .await
    }

    async fn claim_webhooks(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Notification>> {
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(gpkg_sql("claim")).sql()?;
            let rows = stmt
                .query_map(
                    rusqlite::params![stamp(&now), stamp(&until), limit as i64],
                    gpkg_notification_row,
                )
                .sql()?;
            rows.map(|r| gpkg_notification(r.sql()?)).collect()
        })
        .await
    }

    async fn finish_notification(
        &self,
        id: i64,
        outcome: &NotificationOutcome,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Notification>> {
        let (outcome, actor) = (outcome.clone(), actor.clone());
        self.write(move |conn| {
            use rusqlite::OptionalExtension;
            let (status, error, retry_at, action) = outcome.parts();
            let delivered_at = (status == DeliveryStatus::Delivered).then(|| stamp(&now));
            let tx = begin(conn)?;
            let row = tx
                .prepare_cached(gpkg_sql("finish"))
                .sql()?
                .query_row(
                    rusqlite::params![
                        id,
                        status.as_str(),
                        error,
                        retry_at.as_ref().map(stamp),
                        delivered_at,
                        stamp(&now)
                    ],
                    gpkg_notification_row,
                )
                .optional()
                .sql()?;
            let Some(row) = row else {
                return Ok(None);
            };
            let n = gpkg_notification(row)?;
            gpkg_audit(
                &tx,
                &actor,
                action,
                &format!("notification_outbox/{id}"),
                &serde_json::json!({"status": status, "error": error, "retry_at": retry_at}),
            )?;
            tx.commit().sql()?;
            Ok(Some(n))
        })
        .await
    }
}

/// The raw columns of a GeoPackage notification row (times as text).
type GpkgNotificationRow = (
    (i64, i64, i64, String, String, String, String),
    (
        String,
        i32,
        Option<String>,
        String,
        String,
        String,
        Option<String>,
    ),
);

fn gpkg_notification_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GpkgNotificationRow> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ),
        (
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
        ),
    ))
}

fn parse_stamp(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            StoreError::Backend(BackendError::with_source(
                format!("stored time '{s}': {e}"),
                e,
            ))
        })
}

fn gpkg_notification(row: GpkgNotificationRow) -> StoreResult<Notification> {
    let ((id, ticket_id, owner_id, channel, address, message, due_at), rest) = row;
    let (status, attempts, last_error, next_attempt_at, created_at, updated_at, delivered_at) =
        rest;
    Ok(Notification {
        id,
        ticket_id,
        owner_id,
        channel: parse_enum::<Channel>(&channel)?,
        address,
        message,
        due_at: parse_stamp(&due_at)?,
        status: parse_enum::<DeliveryStatus>(&status)?,
        attempts,
        last_error,
        next_attempt_at: parse_stamp(&next_attempt_at)?,
        created_at: parse_stamp(&created_at)?,
        updated_at: parse_stamp(&updated_at)?,
        delivered_at: delivered_at.as_deref().map(parse_stamp).transpose()?,
    })
}
