//! The PostGIS side of [`AuditLog`]: appends, the search, the chain and its retention cut,
//! with the statements in `postgis.sql` beside this file.

use crate::postgis::*;
use crate::{cut_end, AuditCut, AuditEntry, AuditLog, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::audit::{AuditFilter, AuditRecord, ChainAnchor, ChainRow};
use lifeline_model::Actor;
use tokio_postgres::Row;

crate::sqlfile::named_sql!(fn pg_sql = "audit/postgis.sql", include_str!("postgis.sql"));

fn entry_from_row(r: &Row) -> Result<AuditEntry, tokio_postgres::Error> {
    let bbox: [Option<f64>; 4] = [
        r.try_get(9)?,
        r.try_get(10)?,
        r.try_get(11)?,
        r.try_get(12)?,
    ];
    Ok(AuditEntry {
        id: r.try_get(0)?,
        seq: r.try_get(1)?,
        at: r.try_get(2)?,
        actor: r.try_get(3)?,
        role: r.try_get(4)?,
        action: r.try_get(5)?,
        target: r.try_get(6)?,
        detail: r.try_get(7)?,
        request_id: r.try_get(8)?,
        bbox: match bbox {
            [Some(a), Some(b), Some(c), Some(d)] => Some([a, b, c, d]),
            _ => None,
        },
        hash: r.try_get(13)?,
    })
}

#[async_trait]
impl AuditLog for PostgisStore {
    async fn append_audit(&self, actor: &Actor, record: &AuditRecord) -> StoreResult<()> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client.prepare_cached(pg_sql("append")).await.map_err(e)?;
        let b = record.bbox.map(<[f64; 4]>::from);
        let c = |i: usize| b.map(|b| b[i]);
        client
            .execute(
                &stmt,
                &[
                    &actor.name,
                    &actor.role,
                    &record.action,
                    &record.target,
                    &record.detail,
                    &record.request_id,
                    &c(0),
                    &c(1),
                    &c(2),
                    &c(3),
                ],
            )
            .await
            .map_err(e)?;
        Ok(())
    }

    async fn search_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let b = f.bbox.map(<[f64; 4]>::from);
        let c = |i: usize| b.map(|b| b[i]);
        let layer = f.layer.map(|l| l.as_str().to_string());
        // Not cached: a statement planned for these parameters (see postgis.sql).
        client
            .query(
                pg_sql("search"),
                &[
                    &f.actor,
                    &f.actions(),
                    &c(0),
                    &c(1),
                    &c(2),
                    &c(3),
                    &layer,
                    &f.from,
                    &f.to,
                    &as_i64(f.limit),
                ],
            )
            .await
            .map_err(e)?
            .iter()
            .map(entry_from_row)
            .collect::<Result<_, _>>()
            .map_err(decode_err)
    }

    async fn audit_anchor(&self) -> StoreResult<ChainAnchor> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let row = client.query_one(pg_sql("anchor"), &[]).await.map_err(e)?;
        Ok(ChainAnchor {
            seq: row.try_get(0).map_err(decode_err)?,
            hash: row.try_get(1).map_err(decode_err)?,
        })
    }

    async fn audit_chain(&self, after: i64, limit: usize) -> StoreResult<Vec<ChainRow>> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client.prepare_cached(pg_sql("chain")).await.map_err(e)?;
        client
            .query(&stmt, &[&after, &as_i64(limit)])
            .await
            .map_err(e)?
            .iter()
            .map(|r| {
                let role: lifeline_model::Role = r.try_get(4)?;
                Ok(ChainRow {
                    id: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    at: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    role: role.as_str().to_string(),
                    action: r.try_get(5)?,
                    target: r.try_get(6)?,
                    detail: r.try_get(7)?,
                    request_id: r.try_get(8)?,
                    prev_hash: r.try_get(9)?,
                    hash: r.try_get(10)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(decode_err)
    }

    async fn cut_audit(&self, before: DateTime<Utc>, segment: i64) -> StoreResult<AuditCut> {
        let e = |e| map_pg(e, Ctx::Other);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        tx.execute(pg_sql("lock"), &[]).await.map_err(e)?;
        let row = tx.query_one(pg_sql("anchor"), &[]).await.map_err(e)?;
        let anchor = ChainAnchor {
            seq: row.try_get(0).map_err(decode_err)?,
            hash: row.try_get(1).map_err(decode_err)?,
        };
        let first_young: i64 = tx
            .query_one(pg_sql("first_young"), &[&before])
            .await
            .map_err(e)?
            .try_get(0)
            .map_err(decode_err)?;
        let Some(end) = cut_end(anchor.seq, first_young, segment) else {
            tx.commit().await.map_err(e)?;
            return Ok(AuditCut { removed: 0, anchor });
        };
        let hash: String = tx
            .query_one(pg_sql("hash_at"), &[&end])
            .await
            .map_err(e)?
            .try_get(0)
            .map_err(decode_err)?;
        tx.execute(pg_sql("allow_cut"), &[]).await.map_err(e)?;
        let removed = tx.execute(pg_sql("cut"), &[&end]).await.map_err(e)?;
        tx.execute(pg_sql("move_anchor"), &[&end, &hash])
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(AuditCut {
            removed,
            anchor: ChainAnchor { seq: end, hash },
        })
    }
}
