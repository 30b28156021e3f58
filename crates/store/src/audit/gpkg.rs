//! The GeoPackage side of [`AuditLog`]: appends, the search, the chain and its retention
//! cut, with the statements in `gpkg.sql` beside this file. Appends and the cut run on the
//! writer connection, which serialises them.

use crate::gpkg::*;
use crate::{cut_end, AuditCut, AuditEntry, AuditLog, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeline_model::audit::{AuditFilter, AuditRecord, ChainAnchor, ChainRow};
use lifeline_model::Actor;
use rusqlite::params;

crate::sqlfile::named_sql!(fn gp_sql = "audit/gpkg.sql", include_str!("gpkg.sql"));

/// A time as the GeoPackage stores it (and compares it, as text).
fn text_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    let detail: String = r.get(7)?;
    let bbox: [Option<f64>; 4] = [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?];
    Ok(AuditEntry {
        id: r.get(0)?,
        seq: r.get(1)?,
        at: stamp(r, 2)?,
        actor: r.get(3)?,
        role: txt(r, 4)?,
        action: r.get(5)?,
        target: r.get(6)?,
        // Written by us as JSON; anything else is shown as the text it is.
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        request_id: r.get(8)?,
        bbox: match bbox {
            [Some(a), Some(b), Some(c), Some(d)] => Some([a, b, c, d]),
            _ => None,
        },
        hash: r.get(13)?,
    })
}

fn anchor(c: &rusqlite::Connection) -> StoreResult<ChainAnchor> {
    c.prepare_cached(gp_sql("anchor"))
        .sql()?
        .query_row([], |r| {
            Ok(ChainAnchor {
                seq: r.get(0)?,
                hash: r.get(1)?,
            })
        })
        .sql()
}

#[async_trait]
impl AuditLog for GpkgStore {
    async fn append_audit(&self, actor: &Actor, record: &AuditRecord) -> StoreResult<()> {
        let (actor, record) = (actor.clone(), record.clone());
        self.write(move |c| {
            let (_, stamp) = now();
            let b = record.bbox.map(<[f64; 4]>::from);
            let k = |i: usize| b.map(|b| b[i]);
            c.prepare_cached(gp_sql("append"))
                .sql()?
                .execute(params![
                    stamp,
                    actor.name,
                    actor.role.as_str(),
                    record.action,
                    record.target,
                    record.detail.to_string(),
                    record.request_id,
                    k(0),
                    k(1),
                    k(2),
                    k(3),
                ])
                .sql()?;
            Ok(())
        })
        .await
    }

    async fn search_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let f = f.clone();
        self.read(move |c| {
            // Full stamps: a bound text that looks like a number would take the column's
            // NUMERIC affinity and compare as a number.
            let from = f
                .from
                .map_or_else(|| "0000-01-01T00:00:00.000Z".to_string(), text_time);
            let to =
                f.to.map_or_else(|| "9999-12-31T23:59:59.999Z".to_string(), text_time);
            let actions = f.actions().map(|a| serde_json::json!(a).to_string());
            let layer = f.layer.map(|l| l.as_str());
            let limit = lim(f.limit);
            let rows = match f.bbox {
                None => {
                    let mut stmt = c.prepare_cached(gp_sql("search")).sql()?;
                    let rows = stmt
                        .query_map(
                            params![from, to, f.actor, actions, layer, limit],
                            entry_from_row,
                        )
                        .sql()?;
                    rows.collect::<rusqlite::Result<Vec<_>>>().sql()?
                }
                Some(b) => {
                    let mut stmt = c.prepare_cached(gp_sql("search_area")).sql()?;
                    let rows = stmt
                        .query_map(
                            params![
                                from,
                                to,
                                f.actor,
                                actions,
                                layer,
                                limit,
                                b.min_x(),
                                b.min_y(),
                                b.max_x(),
                                b.max_y()
                            ],
                            entry_from_row,
                        )
                        .sql()?;
                    rows.collect::<rusqlite::Result<Vec<_>>>().sql()?
                }
            };
            Ok(rows)
        })
        .await
    }

    async fn audit_anchor(&self) -> StoreResult<ChainAnchor> {
        self.read(|c| anchor(c)).await
    }

    async fn audit_chain(&self, after: i64, limit: usize) -> StoreResult<Vec<ChainRow>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(gp_sql("chain")).sql()?;
            let rows = stmt
                .query_map(params![after, lim(limit)], |r| {
                    Ok(ChainRow {
                        id: r.get(0)?,
                        seq: r.get(1)?,
                        at: stamp(r, 2)?,
                        actor: r.get(3)?,
                        role: r.get(4)?,
                        action: r.get(5)?,
                        target: r.get(6)?,
                        detail: r.get(7)?,
                        request_id: r.get(8)?,
                        prev_hash: r.get(9)?,
                        hash: r.get(10)?,
                    })
                })
                .sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
    }

    async fn cut_audit(&self, before: DateTime<Utc>, segment: i64) -> StoreResult<AuditCut> {
        self.write(move |c| {
            let tx = begin(c)?;
            let anchor = anchor(&tx)?;
            let first_young: i64 = tx
                .prepare_cached(gp_sql("first_young"))
                .sql()?
                .query_row([text_time(before)], |r| r.get(0))
                .sql()?;
            let Some(end) = cut_end(anchor.seq, first_young, segment) else {
                return Ok(AuditCut { removed: 0, anchor });
            };
            let hash: String = tx
                .prepare_cached(gp_sql("hash_at"))
                .sql()?
                .query_row([end], |r| r.get(0))
                .sql()?;
            tx.execute(gp_sql("open_cut"), []).sql()?;
            let removed = tx.execute(gp_sql("cut"), [end]).sql()?;
            let (_, stamp) = now();
            tx.execute(gp_sql("move_anchor"), params![end, hash, stamp])
                .sql()?;
            tx.commit().sql()?;
            Ok(AuditCut {
                removed: removed as u64,
                anchor: ChainAnchor { seq: end, hash },
            })
        })
        .await
    }
}
