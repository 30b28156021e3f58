//! [`TicketStore`] on the GeoPackage: every write is one transaction on the writer
//! connection with its audit entries; statements in `gpkg.sql` beside this file.

use super::{channels_detail, decode, parse_enum, stale, submit_detail, Submitted, TicketStore};
use crate::gpkg::{begin, GpkgStore, SqlExt};
use crate::{backend_error, BackendError, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::notification::{
    Channel, DeliveryStatus, Draft, NewNotification, Notification, NotificationFilter,
    NotificationOutcome, OwnerChannels,
};
use lifeline_model::ticket::{Ticket, TicketFilter};
use lifeline_model::Actor;

crate::sqlfile::named_sql!(fn gpkg_sql = "tickets/gpkg.sql", include_str!("gpkg.sql"));

/// A ticket as the JSON text the GeoPackage store keeps (written straight to text: a
/// `serde_json::Value` tree in between was most of a submission's allocations).
fn encode(t: &Ticket) -> StoreResult<String> {
    serde_json::to_string(t).map_err(backend_error)
}

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
