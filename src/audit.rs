//! The access audit (issue 21), on the server tier: capabilities return what a read
//! returned, and the server records it here ([`ReadAudit::record`]) before it answers.
//! This is the seam because only the server knows the request (its id, the caller as
//! authenticated) and because a capability's use case stays a pure read that the CLI and
//! tests can call without writing anything. Tiles, read far too often to log one by one,
//! are summed in memory per key, layer, hour and zoom ([`ReadAudit::tile`]) and written as
//! one entry per group with its tile range, every few minutes and at shutdown
//! ([`ReadAudit::flush_tiles`]).
//!
//! Also here, the two use cases over the chain the CLI runs: [`verify`] and [`cut`].

use crate::config::QuotaConfig;
use crate::index::SpatialIndex;
use crate::model::audit::{audited, AuditFilter, ChainVerifier, ReadEntry, ReadKind};
use crate::model::check_result::CheckResult;
use crate::model::ticket::Ticket;
use crate::model::{Actor, Bbox, Clock, Layer, Record, Role};
use crate::store::{AuditCut, AuditEntry, AuditLog, StoreError};
use crate::tileserver::service::TileRead;
use chrono::{DateTime, Timelike, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Records the reads that return more than a viewer may see, and keeps the daily quotas
/// of those reads.
pub struct ReadAudit {
    store: Arc<dyn AuditLog>,
    clock: Clock,
    tiles: Mutex<HashMap<TileKey, TileGroup>>,
    quotas: QuotaConfig,
    usage: Mutex<HashMap<String, Usage>>,
}

/// Why a read was not recorded, so not served.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key's daily quota of full-attribute reads is used up.
    #[error("the daily quota of {what} for '{actor}' is used up ({used} of {limit}); it renews at midnight UTC, or an admin can grant a one-off allowance")]
    Quota {
        actor: String,
        what: &'static str,
        used: String,
        limit: String,
        retry_after: u64,
    },
}

/// One key's reads today (by the service clock's UTC day), and what admins granted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub day: Option<chrono::NaiveDate>,
    pub features: u64,
    pub area_km2: f64,
    /// One-off allowances granted today, on top of the role's quota.
    pub extra_features: u64,
    pub extra_area_km2: f64,
}

/// The area of a box in km² (spherical, good to a fraction of a percent at city scale).
pub fn area_km2(b: &Bbox) -> f64 {
    const R_KM: f64 = 6371.0088;
    let (lat0, lat1) = (b.min_y().to_radians(), b.max_y().to_radians());
    let dlon = (b.max_x() - b.min_x()).to_radians();
    (R_KM * R_KM * dlon * (lat1.sin() - lat0.sin())).abs()
}

/// One group of tile reads: who, at which role, which layer, which hour, which zoom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TileKey {
    actor: String,
    role: Role,
    layer: Layer,
    hour: DateTime<Utc>,
    z: u8,
}

/// What a group of tile reads covered: the range of tiles and how many were served.
#[derive(Debug, Clone)]
struct TileGroup {
    min_x: u32,
    max_x: u32,
    min_y: u32,
    max_y: u32,
    tiles: u64,
    /// The first request of the group (the others are counted, not named).
    request_id: Option<String>,
}

impl ReadAudit {
    /// A recorder appending to `store`, with hours of tile groups from `clock`.
    pub fn new(store: Arc<dyn AuditLog>, clock: Clock, quotas: QuotaConfig) -> ReadAudit {
        ReadAudit {
            store,
            clock,
            tiles: Mutex::new(HashMap::new()),
            quotas,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a read against the actor's daily quota, or refuses it (recording the refusal).
    async fn charge(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        entry: &ReadEntry,
    ) -> Result<(), AuditError> {
        let Some(q) = self.quotas.get(&actor.role) else {
            return Ok(());
        };
        let now = self.clock.now();
        let today = now.date_naive();
        let area = entry.bbox.as_ref().map_or(0.0, area_km2);
        let refused = {
            let mut usage = self.usage.lock();
            let u = usage.entry(actor.name.clone()).or_default();
            if u.day != Some(today) {
                *u = Usage {
                    day: Some(today),
                    ..Usage::default()
                };
            }
            let over_features = q
                .features
                .filter(|lim| u.features + entry.features > lim + u.extra_features)
                .map(|lim| {
                    (
                        "features",
                        u.features.to_string(),
                        (lim + u.extra_features).to_string(),
                    )
                });
            let over_area = q
                .area_km2
                .filter(|lim| u.area_km2 + area > lim + u.extra_area_km2)
                .map(|lim| {
                    (
                        "area (km²)",
                        format!("{:.3}", u.area_km2),
                        format!("{:.3}", lim + u.extra_area_km2),
                    )
                });
            match over_features.or(over_area) {
                Some(over) => Some(over),
                None => {
                    u.features += entry.features;
                    u.area_km2 += area;
                    None
                }
            }
        };
        let Some((what, used, limit)) = refused else {
            return Ok(());
        };
        let tomorrow = (today + chrono::Duration::days(1))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let retry_after = (tomorrow - now).num_seconds().max(1) as u64;
        let refusal = ReadEntry::new(ReadKind::QuotaExceeded, entry.target.clone())
            .within(entry.bbox)
            .read(&entry.layers, entry.features)
            .with("refused", serde_json::json!(entry.kind))
            .with("quota", serde_json::json!(what))
            .with("used", serde_json::json!(used))
            .with("limit", serde_json::json!(limit));
        self.store
            .append_audit(actor, &refusal.into_record(request_id.map(str::to_string)))
            .await?;
        Err(AuditError::Quota {
            actor: actor.name.clone(),
            what,
            used,
            limit,
            retry_after,
        })
    }

    /// Grants `actor_name` a one-off allowance on top of its quota for today (by `admin`,
    /// audited as `quota_grant`); returns its usage after the grant.
    pub async fn grant(
        &self,
        admin: &Actor,
        request_id: Option<&str>,
        actor_name: &str,
        features: u64,
        area_km2: f64,
    ) -> Result<Usage, AuditError> {
        let today = self.clock.now().date_naive();
        let usage = {
            let mut usage = self.usage.lock();
            let u = usage.entry(actor_name.to_string()).or_default();
            if u.day != Some(today) {
                *u = Usage {
                    day: Some(today),
                    ..Usage::default()
                };
            }
            u.extra_features += features;
            u.extra_area_km2 += area_km2;
            u.clone()
        };
        let entry = ReadEntry::new(ReadKind::QuotaGrant, format!("quotas/{actor_name}"))
            .with("grantee", serde_json::json!(actor_name))
            .with("features", serde_json::json!(features))
            .with("area_km2", serde_json::json!(area_km2))
            .with("day", serde_json::json!(today));
        let mut record = entry.into_record(request_id.map(str::to_string));
        // A grant reads nothing: no layers, no feature count of its own.
        if let Some(m) = record.detail.as_object_mut() {
            m.remove("layers");
            m.insert("features".into(), serde_json::json!(features));
        }
        self.store.append_audit(admin, &record).await?;
        Ok(usage)
    }

    /// An actor's usage today.
    pub fn usage(&self, actor_name: &str) -> Usage {
        let today = self.clock.now().date_naive();
        self.usage
            .lock()
            .get(actor_name)
            .filter(|u| u.day == Some(today))
            .cloned()
            .unwrap_or_default()
    }

    /// Records one read by `actor`, if its role sees more than a viewer (a viewer's reads
    /// show only what anyone may see, and are not logged). A failure to record fails the
    /// request: a read that cannot be audited is not served.
    pub async fn record(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        entry: ReadEntry,
    ) -> Result<(), AuditError> {
        if !audited(actor) {
            return Ok(());
        }
        // Layer reads are audited only where the role sees restricted attributes.
        let layer_read = matches!(
            entry.kind,
            ReadKind::OgcItems | ReadKind::OgcFeature | ReadKind::Features
        );
        if layer_read && !entry.layers.iter().any(|l| restricted(*l, actor.role)) {
            return Ok(());
        }
        self.charge(actor, request_id, &entry).await?;
        self.store
            .append_audit(actor, &entry.into_record(request_id.map(str::to_string)))
            .await?;
        Ok(())
    }

    /// Records a read of pipes by id (a trace's): their box from the index.
    #[allow(clippy::too_many_arguments)]
    pub async fn pipes(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        index: &SpatialIndex,
        target: &str,
        pipes: &[i64],
        purpose: Option<String>,
    ) -> Result<(), AuditError> {
        let records: Vec<_> = pipes
            .iter()
            .filter_map(|id| index.get(Layer::Pipelines, *id))
            .collect();
        let entry = ReadEntry::new(ReadKind::Trace, target)
            .within(records_bbox(records.iter().map(|r| r.as_ref())))
            .read(&[Layer::Pipelines], pipes.len() as u64)
            .purpose(purpose);
        self.record(actor, request_id, entry).await
    }

    /// Counts a tile of restricted attributes served to `actor` in its group.
    pub fn tile(&self, actor: &Actor, request_id: Option<&str>, read: &TileRead) {
        if !audited(actor) {
            return;
        }
        let now = self.clock.now();
        let hour = now
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        let c = read.coord;
        let mut groups = self.tiles.lock();
        for layer in &read.layers {
            let key = TileKey {
                actor: actor.name.clone(),
                role: actor.role,
                layer: *layer,
                hour,
                z: c.z(),
            };
            let g = groups.entry(key).or_insert_with(|| TileGroup {
                min_x: c.x(),
                max_x: c.x(),
                min_y: c.y(),
                max_y: c.y(),
                tiles: 0,
                request_id: request_id.map(str::to_string),
            });
            g.min_x = g.min_x.min(c.x());
            g.max_x = g.max_x.max(c.x());
            g.min_y = g.min_y.min(c.y());
            g.max_y = g.max_y.max(c.y());
            g.tiles += 1;
        }
    }

    /// Tile groups waiting to be written.
    pub fn pending_tiles(&self) -> usize {
        self.tiles.lock().len()
    }

    /// Writes every tile group as one entry (its tile range, box and count) and empties
    /// the groups; returns the entries written. Groups that fail to write are kept for the
    /// next flush.
    pub async fn flush_tiles(&self) -> Result<usize, StoreError> {
        let groups: Vec<(TileKey, TileGroup)> = self.tiles.lock().drain().collect();
        let mut written = 0;
        let mut failed = None;
        for (key, g) in groups {
            if failed.is_some() {
                self.merge_back(key, g);
                continue;
            }
            let actor = Actor {
                name: key.actor.clone(),
                key_id: None,
                role: key.role,
            };
            let entry = tile_entry(&key, &g);
            match self
                .store
                .append_audit(&actor, &entry.into_record(g.request_id.clone()))
                .await
            {
                Ok(()) => written += 1,
                Err(e) => {
                    self.merge_back(key, g);
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    fn merge_back(&self, key: TileKey, g: TileGroup) {
        let mut groups = self.tiles.lock();
        let cur = groups.entry(key).or_insert_with(|| TileGroup {
            tiles: 0,
            ..g.clone()
        });
        cur.min_x = cur.min_x.min(g.min_x);
        cur.max_x = cur.max_x.max(g.max_x);
        cur.min_y = cur.min_y.min(g.min_y);
        cur.max_y = cur.max_y.max(g.max_y);
        cur.tiles += g.tiles;
    }
}

/// Writes the tile groups every `every` until aborted.
pub fn spawn_tile_flush(
    audit: Arc<ReadAudit>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = audit.flush_tiles().await {
                tracing::error!(error = %e, "tile reads could not be written to the audit log; kept for the next try");
            }
        }
    })
}

/// The entry of one tile group: the layer, the box of its tile range, the range itself,
/// the hour and the number of tiles.
fn tile_entry(key: &TileKey, g: &TileGroup) -> ReadEntry {
    let corner = |x: u32, y: u32| {
        lifeline_tiles::TileCoord::new(u32::from(key.z), x, y)
            .map(|t| t.bounds_lonlat())
            .ok()
    };
    let bbox = match (corner(g.min_x, g.max_y), corner(g.max_x, g.min_y)) {
        (Some(sw), Some(ne)) => Bbox::new(
            sw.min().x,
            sw.min().y.max(-90.0),
            ne.max().x,
            ne.max().y.min(90.0),
        )
        .ok(),
        _ => None,
    };
    ReadEntry::new(ReadKind::Tiles, format!("tiles/{}/{}", key.layer, key.z))
        .within(bbox)
        .read(&[key.layer], 0)
        .with("hour", serde_json::json!(key.hour))
        .with("tiles", serde_json::json!(g.tiles))
        .with(
            "tile_range",
            serde_json::json!({"z": key.z, "min_x": g.min_x, "max_x": g.max_x,
                "min_y": g.min_y, "max_y": g.max_y}),
        )
}

/// Whether `role` sees attributes of `layer` that a viewer does not.
pub fn restricted(layer: Layer, role: Role) -> bool {
    role > Role::Viewer
        && crate::model::schema::fields(layer)
            .iter()
            .any(|f| f.role > Role::Viewer && f.role <= role)
}

/// The box around some records' geometries.
pub fn records_bbox<'a>(records: impl Iterator<Item = &'a Record>) -> Option<Bbox> {
    records
        .filter_map(|r| r.geometry().as_ref().and_then(Bbox::of))
        .reduce(|a, b| a.union(&b))
}

/// A read of records of one layer: its box is the records'.
pub fn of_records<'a>(
    kind: ReadKind,
    target: String,
    layer: Layer,
    records: impl Iterator<Item = &'a Record> + Clone,
) -> ReadEntry {
    let n = records.clone().count() as u64;
    ReadEntry::new(kind, target)
        .within(records_bbox(records))
        .read(&[layer], n)
}

/// The box around a GeoJSON geometry's coordinates.
fn geojson_bbox(g: &serde_json::Value) -> Option<Bbox> {
    fn walk(v: &serde_json::Value, b: &mut Option<[f64; 4]>) {
        match v.as_array() {
            Some(a) if a.len() >= 2 && a[0].is_number() && a[1].is_number() => {
                let (x, y) = (a[0].as_f64().unwrap_or(0.0), a[1].as_f64().unwrap_or(0.0));
                let e = b.get_or_insert([x, y, x, y]);
                *e = [e[0].min(x), e[1].min(y), e[2].max(x), e[3].max(y)];
            }
            Some(a) => a.iter().for_each(|c| walk(c, b)),
            None => {}
        }
    }
    let mut b = None;
    walk(&g["coordinates"], &mut b);
    b.and_then(|b| Bbox::try_from(b).ok())
}

/// An excavation check: the dig's polygon and box, what it returned (conflicting pipes,
/// risk points, sensors, owners) and its work type.
pub fn of_check(r: &CheckResult) -> ReadEntry {
    let mut layers = vec![Layer::Pipelines, Layer::Owners];
    if !r.risk_points.is_empty() {
        layers.push(Layer::RiskPoints);
    }
    if !r.sensors.is_empty() {
        layers.push(Layer::Sensors);
    }
    let n = r.conflicts.len() + r.owners.len() + r.risk_points.len() + r.sensors.len();
    let mut e = ReadEntry::new(ReadKind::ExcavationCheck, "excavation/check")
        .within(geojson_bbox(&r.dig.geometry))
        .read(&layers, n as u64)
        .purpose(Some(r.dig.work_type.clone()))
        .with("conflicts", serde_json::json!(r.conflicts.len()));
    e.geometry = Some(r.dig.geometry.clone());
    e
}

/// A ticket view: the dig of the ticket, its conflicts and owners, the ticket as purpose.
pub fn of_ticket(t: &Ticket) -> ReadEntry {
    let conflicts = t.check.conflict_pipes().len();
    let n = conflicts + t.owners.len();
    let mut e = ReadEntry::new(ReadKind::TicketView, format!("tickets/{}", t.id))
        .within(geojson_bbox(&t.request.geometry))
        .read(&[Layer::Pipelines, Layer::Owners], n as u64)
        .purpose(Some(format!("ticket {}: {}", t.id, t.request.work_type)));
    e.geometry = Some(t.request.geometry.clone());
    e
}

/// The audit search's query parameters, as given.
#[derive(Debug, Default)]
pub struct SearchParams<'a> {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub bbox: Option<&'a str>,
    pub layer: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub f: Option<&'a str>,
    pub limit: Option<usize>,
}

/// The representations of the audit search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchFormat {
    Json,
    Csv,
}

impl std::str::FromStr for SearchFormat {
    type Err = crate::model::ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(SearchFormat::Json),
            "csv" => Ok(SearchFormat::Csv),
            other => Err(crate::model::ModelError::invalid(
                "f",
                format!(
                    "'{}' is not json or csv",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }
}

/// Parses a time bound: RFC 3339, or a date (midnight UTC).
fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, crate::model::ModelError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    s.parse::<chrono::NaiveDate>()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| {
            crate::model::ModelError::invalid(
                field,
                "is neither an RFC 3339 time nor a YYYY-MM-DD date",
            )
        })
}

/// The audit search's parameters parsed into the store's filter and the format.
pub fn search_request(
    p: SearchParams<'_>,
) -> Result<(AuditFilter, SearchFormat), crate::model::ModelError> {
    let filter = AuditFilter {
        actor: p.actor,
        action: p.action,
        bbox: p.bbox.map(Bbox::parse).transpose()?,
        layer: p.layer.map(str::parse).transpose()?,
        from: p.from.map(|s| parse_time("from", s)).transpose()?,
        to: p.to.map(|s| parse_time("to", s)).transpose()?,
        limit: crate::model::page_limit(p.limit, 100, 100_000)?,
    };
    filter.check()?;
    let format =
        p.f.map(str::parse)
            .transpose()?
            .unwrap_or(SearchFormat::Json);
    Ok((filter, format))
}

/// Audit entries as CSV (RFC 4180): one row per entry, `detail` as its JSON text.
pub fn entries_csv(entries: &[AuditEntry]) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::from(
        "id,seq,at,actor,role,action,target,request_id,min_x,min_y,max_x,max_y,detail,hash\r\n",
    );
    for e in entries {
        let b = e.bbox.map(|b| b.map(|v| v.to_string()));
        let c = |i: usize| b.as_ref().map_or(String::new(), |b| b[i].clone());
        let row = [
            e.id.to_string(),
            e.seq.to_string(),
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            field(&e.actor),
            e.role.to_string(),
            field(&e.action),
            field(&e.target),
            field(e.request_id.as_deref().unwrap_or("")),
            c(0),
            c(1),
            c(2),
            c(3),
            field(&e.detail.to_string()),
            e.hash.clone(),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// Entries checked.
    pub checked: u64,
    /// Where the chain began (the anchor after retention cuts).
    pub anchor_seq: i64,
    /// The last entry checked.
    pub last_seq: i64,
    /// The first broken entry, if any.
    pub broken: Option<crate::model::audit::BrokenEntry>,
}

/// Checks the whole stored chain from its anchor, page by page, and names the first
/// broken entry.
pub async fn verify(store: &dyn AuditLog) -> Result<Verified, StoreError> {
    const PAGE: usize = 5_000;
    let anchor = store.audit_anchor().await?;
    let mut v = ChainVerifier::new(&anchor);
    loop {
        let rows = store.audit_chain(v.last_seq(), PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            if let Err(broken) = v.check(row) {
                return Ok(Verified {
                    checked: v.checked(),
                    anchor_seq: anchor.seq,
                    last_seq: v.last_seq(),
                    broken: Some(broken),
                });
            }
        }
    }
    Ok(Verified {
        checked: v.checked(),
        anchor_seq: anchor.seq,
        last_seq: v.last_seq(),
        broken: None,
    })
}

/// Removes the whole segments whose entries are all older than `retention_days` before
/// `now`.
pub async fn cut(
    store: &dyn AuditLog,
    now: DateTime<Utc>,
    retention_days: u32,
    segment: u32,
) -> Result<AuditCut, StoreError> {
    let before = now - chrono::Duration::days(i64::from(retention_days));
    store.cut_audit(before, i64::from(segment)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_group_entry_covers_its_range() {
        let key = TileKey {
            actor: "a".into(),
            role: Role::Analyst,
            layer: Layer::Pipelines,
            hour: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            z: 15,
        };
        let g = TileGroup {
            min_x: 26724,
            max_x: 26726,
            min_y: 13620,
            max_y: 13622,
            tiles: 9,
            request_id: Some("r".into()),
        };
        let e = tile_entry(&key, &g);
        let b = e.bbox.unwrap();
        let one = lifeline_tiles::TileCoord::new(15, 26724, 13622)
            .unwrap()
            .bounds_lonlat();
        assert!((b.min_x() - one.min().x).abs() < 1e-9);
        assert!((b.min_y() - one.min().y).abs() < 1e-9);
        assert!(b.max_x() > one.max().x && b.max_y() > one.max().y);
        assert_eq!(e.extra["tiles"], 9);
        assert_eq!(e.layers, vec![Layer::Pipelines]);
    }
}
