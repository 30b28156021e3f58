//! [`TicketStore`] on PostGIS: every write is one statement (a data-modifying CTE) with its
//! audit entries; statements in `postgis.sql` beside this file.

use super::{channels_detail, decode, parse_enum, stale, submit_detail, Submitted, TicketStore};
use crate::postgis::PostgisStore;
use crate::{backend_error, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::notification::{
    Channel, DeliveryStatus, Draft, NewNotification, Notification, NotificationFilter,
    NotificationOutcome, OwnerChannels,
};
use lifeline_model::ticket::{Ticket, TicketFilter};
use lifeline_model::Actor;

crate::sqlfile::named_sql!(fn pg_sql = "tickets/postgis.sql", include_str!("postgis.sql"));

/// A ticket as a PostGIS `jsonb` parameter, serialised straight into the wire buffer.
fn pg_doc(t: &Ticket) -> tokio_postgres::types::Json<&Ticket> {
    tokio_postgres::types::Json(t)
}

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
