//! The GeoPackage side of [`RecordStore`] and [`ChangeFeed`]: each layer's table laid out
//! from its schema ([`Table`]), one generic row codec for every layer ([`Row`]), single
//! writes in one `BEGIN IMMEDIATE` transaction with their change-log and audit rows, bulk
//! loads (grouped inserts, the R*Tree rebuilt once for large loads), reads, and the
//! change log.

use crate::gpkg::rtree as gpkg_rtree;
use crate::gpkg::*;
use crate::prelude::*;
use crate::{backend_error, BackendError, StoreError, StoreResult, Written};
use async_trait::async_trait;
use chrono::NaiveDate;
use lifeline_model::schema::{self, Column, Field, Schema, Stored};
use lifeline_model::{
    feature, Actor, Change, ChangeOp, Dataset, GridCell, Layer, NetworkNode, Owner, Pipeline,
    Record, RiskPoint, Sensor,
};
use rusqlite::types::{Type, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Statement, ToSql};
use serde_json::json;
use std::sync::OnceLock;

/// How one layer is laid out in the file. Built once per layer from the layer's schema
/// ([`lifeline_model::schema`]): the columns are the geometry column followed by the schema's
/// attributes in table order.
pub(crate) struct Table {
    pub(crate) layer: Layer,
    pub(crate) name: &'static str,
    /// The record's name in messages ("owner 99 does not exist").
    pub(crate) noun: &'static str,
    /// The geometry column (with its R*Tree `rtree_<name>_<geom>`), if the layer has one.
    pub(crate) geom: Option<&'static str>,
    /// Every column but `id` and `updated_at`, in bind order (`?2`…); `id` is `?1` and
    /// `updated_at` follows the last of these.
    pub(crate) cols: Vec<&'static str>,
    /// Tables and columns whose foreign keys point at this table.
    pub(crate) referenced_by: Vec<(&'static str, &'static str)>,
}

impl Table {
    fn select_sql(&self) -> String {
        format!("SELECT id, {} FROM {}", self.cols.join(", "), self.name)
    }

    fn insert_sql(&self) -> String {
        let marks: Vec<String> = (1..=self.cols.len() + 2).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {} (id, {}, updated_at) VALUES ({})",
            self.name,
            self.cols.join(", "),
            marks.join(", ")
        )
    }

    /// One INSERT of `rows` rows (anonymous parameters, row after row, each bound like
    /// [`Table::insert_sql`]'s).
    fn insert_many_sql(&self, rows: usize) -> String {
        let one = format!("({})", vec!["?"; self.cols.len() + 2].join(", "));
        format!(
            "INSERT INTO {} (id, {}, updated_at) VALUES {}",
            self.name,
            self.cols.join(", "),
            vec![one; rows].join(", ")
        )
    }

    fn update_sql(&self) -> String {
        let sets: Vec<String> = self
            .cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 2))
            .collect();
        format!(
            "UPDATE {} SET {}, updated_at = ?{} WHERE id = ?1",
            self.name,
            sets.join(", "),
            self.cols.len() + 2
        )
    }

    /// Insert unless the id exists. The bulk load follows a no-op with an UPDATE, which
    /// keeps the row (and whatever references it), where `INSERT OR REPLACE` would delete
    /// it first.
    ///
    /// Not `ON CONFLICT(id) DO UPDATE`: an UPSERT's conflict mode overrides the
    /// `INSERT OR REPLACE` inside the spec's `rtree_<t>_<c>_update1` trigger, which then
    /// fails with "UNIQUE constraint failed: rtree_….id" (SQLite 3.40).
    fn insert_new_sql(&self) -> String {
        format!("{} ON CONFLICT(id) DO NOTHING", self.insert_sql())
    }
}

/// The table of a layer.
pub(crate) fn table(layer: Layer) -> &'static Table {
    static TABLES: OnceLock<Vec<Table>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| Layer::ALL.iter().map(|l| layout(*l)).collect());
    &tables[Layer::ALL.iter().position(|l| *l == layer).unwrap_or(0)]
}

/// A layer's table, from its schema.
pub(crate) fn layout(layer: Layer) -> Table {
    let geom = (layer != Layer::Owners).then(|| feature::geometry_field(layer));
    let mut cols: Vec<&'static str> = geom.into_iter().collect();
    cols.extend(schema::fields(layer).iter().map(|f| f.name));
    // The referencing columns: the table's own first (a parent cell), then the others.
    let mut referenced_by = Vec::new();
    let own = std::iter::once(layer).chain(Layer::ALL.iter().copied().filter(|l| *l != layer));
    for child in own {
        for f in schema::fields(child) {
            if f.refers_to.is_some_and(|r| r.layer == layer) {
                referenced_by.push((child.as_str(), f.name));
            }
        }
    }
    Table {
        layer,
        name: layer.as_str(),
        noun: match layer {
            Layer::Owners => "owner",
            Layer::GridCells => "grid cell",
            Layer::Pipelines => "pipeline",
            Layer::RiskPoints => "risk point",
            Layer::Sensors => "sensor",
            Layer::Nodes => "node",
        },
        geom,
        cols,
        referenced_by,
    }
}

/// "pipelines 12", or "a new pipelines record" for id 0.
pub(crate) fn label(t: &Table, id: i64) -> String {
    if id == 0 {
        format!("a new {} record", t.name)
    } else {
        format!("{} {id}", t.name)
    }
}

/// A reference from a record to another: (table, id, noun for messages).
pub(crate) type Ref = (&'static str, i64, &'static str);

/// One model record type stored in one table: every [`Schema`] record, bound and read
/// through its schema table, so no layer has a codec of its own.
pub(crate) trait Row: Schema {
    fn table() -> &'static Table {
        table(Self::LAYER)
    }

    /// Binds every column of [`Table::cols`] from `?2` on; returns the envelope of the
    /// geometry, if the layer has one.
    fn bind(&self, b: &mut Binder<'_, '_>) -> StoreResult<Option<Envelope>> {
        let env = match self.geometry() {
            Some(g) => b.geom(encode_gpkg(|w| w.geometry(&g)))?,
            None => None,
        };
        for a in Self::ATTRIBUTES {
            match (a.get)(self) {
                Field::Null => b.val(rusqlite::types::Null)?,
                Field::Str(v) => b.val(v)?,
                Field::F64(v) => b.num(a.info.name, Some(v))?,
                Field::I64(v) => b.val(v)?,
                Field::Date(v) => b.date(Some(v))?,
            }
        }
        Ok(env)
    }

    /// The ids this record refers to (its foreign keys).
    fn refs(&self) -> Vec<Ref> {
        Self::ATTRIBUTES
            .iter()
            .filter_map(|a| {
                let r = a.info.refers_to?;
                match (a.get)(self) {
                    Field::I64(id) => Some((r.layer.as_str(), id, r.noun)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Reads a row of [`Table::select_sql`].
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let first = if Self::table().geom.is_some() { 2 } else { 1 };
        let geometry = match first {
            2 => Some(row.get::<_, Geom>(1)?.0),
            _ => None,
        };
        schema::decode(
            row.get(0)?,
            geometry,
            |i, f| stored(row, first + i, f.column),
            |i, e| {
                let (col, ty) = match i {
                    None => (1, Type::Blob),
                    Some(i) => (first + i, Type::Text),
                };
                rusqlite::Error::FromSqlConversionFailure(col, ty, Box::new(e))
            },
        )
    }
}

impl<R: Schema> Row for R {}

/// The value of column `i` as the schema's column type says it is stored.
pub(crate) fn stored(
    row: &rusqlite::Row<'_>,
    i: usize,
    column: Column,
) -> rusqlite::Result<Stored> {
    let v = match column {
        Column::Text => row.get::<_, Option<String>>(i)?.map(Stored::Text),
        Column::Real => row.get::<_, Option<f64>>(i)?.map(Stored::Real),
        Column::BigInt | Column::Int => row.get::<_, Option<i64>>(i)?.map(Stored::Int),
        Column::Date => row.get::<_, Option<Day>>(i)?.map(|d| Stored::Date(d.0)),
    };
    Ok(v.unwrap_or(Stored::Null))
}

/// Binds one record's values to a statement, checking on the way what SQLite would
/// silently mangle (a NaN becomes NULL there).
pub(crate) struct Binder<'a, 'c> {
    pub(crate) stmt: &'a mut Statement<'c>,
    pub(crate) next: usize,
    pub(crate) table: &'static Table,
    pub(crate) id: i64,
}

impl Binder<'_, '_> {
    fn val<T: ToSql>(&mut self, v: T) -> StoreResult<()> {
        self.stmt.raw_bind_parameter(self.next, v).sql()?;
        self.next += 1;
        Ok(())
    }

    fn num(&mut self, field: &str, v: Option<f64>) -> StoreResult<()> {
        if v.is_some_and(|x| !x.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "{}: {field} is not a finite number",
                label(self.table, self.id)
            )));
        }
        self.val(v)
    }

    fn date(&mut self, v: Option<NaiveDate>) -> StoreResult<()> {
        // `NaiveDate`'s Display is `YYYY-MM-DD` without parsing a format string per row.
        self.val(v.map(|d| d.to_string()))
    }

    fn geom(&mut self, blob: (Vec<u8>, Option<Envelope>)) -> StoreResult<Option<Envelope>> {
        let (bytes, env) = blob;
        if env.is_some_and(|e| !e.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "{}: the geometry has a NaN or infinite coordinate",
                label(self.table, self.id)
            )));
        }
        self.val(bytes)?;
        Ok(env)
    }
}

/// Maps a failed write of `rec` to the error the client should see. SQLite does not say
/// which foreign key failed, so the references are looked up here (inside the still-open
/// transaction) to name the missing one.
pub(crate) fn write_error<R: Row>(conn: &Connection, rec: &R, e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    let t = R::table();
    let what = label(t, rec.id());
    match extended_code(&e) {
        Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) | Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => match missing_ref(conn, &rec.refs()) {
            Ok(Some(msg)) => StoreError::Conflict(format!("{what}: {msg}")),
            _ => StoreError::Conflict(format!("{what} refers to a record that does not exist")),
        },
        _ if is_constraint(&e) => {
            StoreError::Invalid(format!("{what}: the store refused a value ({e})"))
        }
        _ => backend_error(e),
    }
}

/// The first reference of `refs` whose target is missing, as a message.
pub(crate) fn missing_ref(conn: &Connection, refs: &[Ref]) -> StoreResult<Option<String>> {
    for (tbl, id, noun) in refs {
        let exists = conn
            .prepare_cached(&format!("SELECT 1 FROM {tbl} WHERE id = ?1"))
            .sql()?
            .exists([id])
            .sql()?;
        if !exists {
            return Ok(Some(format!("{noun} {id} does not exist")));
        }
    }
    Ok(None)
}

/// Why a record cannot be deleted: the first record that refers to it, if any.
pub(crate) fn referenced_by(conn: &Connection, t: &Table, id: i64) -> StoreResult<Option<String>> {
    for (child, col) in &t.referenced_by {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT min(id), count(*) FROM {child} WHERE {col} = ?1"
            ))
            .sql()?;
        let (first, n): (Option<i64>, i64) =
            stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).sql()?;
        if let Some(first) = first {
            let more = if n > 1 {
                format!(" and {} more", n - 1)
            } else {
                String::new()
            };
            return Ok(Some(format!(
                "{} {id} is still referenced by {child} {first}{more}",
                t.noun
            )));
        }
    }
    Ok(None)
}

/// Binds and executes one record on an insert/update/upsert statement of its table.
/// Returns the number of rows changed and the geometry's envelope.
pub(crate) fn write_row<R: Row>(
    conn: &Connection,
    stmt: &mut Statement<'_>,
    rec: &R,
    stamp: &str,
) -> StoreResult<(usize, Option<Envelope>)> {
    let id = rec.id();
    if id < 0 {
        return Err(StoreError::Invalid(format!(
            "{} {id}: ids are positive",
            R::table().name
        )));
    }
    let env = bind_row(stmt, rec, stamp, 0)?;
    let n = stmt.raw_execute().map_err(|e| write_error(conn, rec, e))?;
    Ok((n, env))
}

/// Binds `rec` as the row whose parameters start after the first `base` ones (id, the
/// table's columns, `stamp`); returns its envelope.
pub(crate) fn bind_row<R: Row>(
    stmt: &mut Statement<'_>,
    rec: &R,
    stamp: &str,
    base: usize,
) -> StoreResult<Option<Envelope>> {
    let id = rec.id();
    // id 0 asks SQLite to assign one.
    stmt.raw_bind_parameter(base + 1, (id != 0).then_some(id))
        .sql()?;
    let mut b = Binder {
        stmt,
        next: base + 2,
        table: R::table(),
        id,
    };
    let env = rec.bind(&mut b)?;
    b.val(stamp)?;
    Ok(env)
}

pub(crate) fn exists(conn: &Connection, t: &Table, id: i64) -> StoreResult<bool> {
    conn.prepare_cached(&format!("SELECT 1 FROM {} WHERE id = ?1", t.name))
        .sql()?
        .exists([id])
        .sql()
}

/// Inserts one record; returns its id and the change version.
pub(crate) fn insert_one<R: Row>(
    conn: &mut Connection,
    rec: &R,
    actor: &Actor,
) -> StoreResult<(i64, i64)> {
    let t = R::table();
    let (_, stamp) = now();
    let tx = begin(conn)?;
    if rec.id() != 0 && exists(&tx, t, rec.id())? {
        return Err(StoreError::Conflict(format!(
            "{} already exists",
            label(t, rec.id())
        )));
    }
    // Named here because SQLite's foreign-key error does not say which key failed.
    if let Some(msg) = missing_ref(&tx, &rec.refs())? {
        return Err(StoreError::Conflict(msg));
    }
    let env = {
        let mut stmt = tx.prepare_cached(&t.insert_sql()).sql()?;
        write_row(&tx, &mut stmt, rec, &stamp)?.1
    };
    let id = if rec.id() == 0 {
        tx.last_insert_rowid()
    } else {
        rec.id()
    };
    touch_contents(&tx, t, env, &stamp)?;
    let version = log_change(&tx, t.layer, id, ChangeOp::Insert, actor, &stamp)?;
    log_audit(
        &tx,
        actor,
        "insert",
        &format!("{}/{id}", t.name),
        &json!({ "version": version }),
        &stamp,
    )?;
    tx.commit().sql()?;
    Ok((id, version))
}

/// Replaces one existing record; returns the change version.
pub(crate) fn update_one<R: Row>(
    conn: &mut Connection,
    rec: &R,
    actor: &Actor,
) -> StoreResult<i64> {
    let t = R::table();
    let id = rec.id();
    let (_, stamp) = now();
    let tx = begin(conn)?;
    if id <= 0 || !exists(&tx, t, id)? {
        return Err(StoreError::NotFound { layer: t.layer, id });
    }
    if let Some(msg) = missing_ref(&tx, &rec.refs())? {
        return Err(StoreError::Conflict(msg));
    }
    let (n, env) = {
        let mut stmt = tx.prepare_cached(&t.update_sql()).sql()?;
        write_row(&tx, &mut stmt, rec, &stamp)?
    };
    if n == 0 {
        return Err(StoreError::NotFound { layer: t.layer, id });
    }
    touch_contents(&tx, t, env, &stamp)?;
    let version = log_change(&tx, t.layer, id, ChangeOp::Update, actor, &stamp)?;
    log_audit(
        &tx,
        actor,
        "update",
        &format!("{}/{id}", t.name),
        &json!({ "version": version }),
        &stamp,
    )?;
    tx.commit().sql()?;
    Ok(version)
}

pub(crate) fn insert_record(
    conn: &mut Connection,
    record: &Record,
    actor: &Actor,
) -> StoreResult<Written> {
    let (id, version) = match record {
        Record::Pipeline(r) => insert_one(conn, r, actor)?,
        Record::RiskPoint(r) => insert_one(conn, r, actor)?,
        Record::GridCell(r) => insert_one(conn, r, actor)?,
        Record::Sensor(r) => insert_one(conn, r, actor)?,
        Record::Node(r) => insert_one(conn, r, actor)?,
        Record::Owner(r) => insert_one(conn, r, actor)?,
    };
    let mut record = record.clone();
    record.set_id(id);
    Ok(Written { record, version })
}

pub(crate) fn update_record(
    conn: &mut Connection,
    record: &Record,
    actor: &Actor,
) -> StoreResult<Written> {
    let version = match record {
        Record::Pipeline(r) => update_one(conn, r, actor)?,
        Record::RiskPoint(r) => update_one(conn, r, actor)?,
        Record::GridCell(r) => update_one(conn, r, actor)?,
        Record::Sensor(r) => update_one(conn, r, actor)?,
        Record::Node(r) => update_one(conn, r, actor)?,
        Record::Owner(r) => update_one(conn, r, actor)?,
    };
    Ok(Written {
        record: record.clone(),
        version,
    })
}

pub(crate) fn delete_record(
    conn: &mut Connection,
    layer: Layer,
    id: i64,
    actor: &Actor,
) -> StoreResult<i64> {
    let t = table(layer);
    let (_, stamp) = now();
    let tx = begin(conn)?;
    if !exists(&tx, t, id)? {
        return Err(StoreError::NotFound { layer, id });
    }
    if let Some(msg) = referenced_by(&tx, t, id)? {
        return Err(StoreError::Conflict(msg));
    }
    tx.prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", t.name))
        .sql()?
        .execute([id])
        .map_err(|e| {
            if extended_code(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) {
                StoreError::Conflict(format!("{} {id} is still referenced", t.noun))
            } else {
                backend_error(e)
            }
        })?;
    touch_contents(&tx, t, None, &stamp)?;
    let version = log_change(&tx, layer, id, ChangeOp::Delete, actor, &stamp)?;
    log_audit(
        &tx,
        actor,
        "delete",
        &format!("{}/{id}", t.name),
        &json!({ "version": version }),
        &stamp,
    )?;
    tx.commit().sql()?;
    Ok(version)
}

/// A bulk write of at least this many rows of a layer, and at least as many as the layer
/// already holds, rebuilds the layer's R*Tree once at the end instead of maintaining it
/// row by row through the triggers (about twice as fast for a city-sized load).
pub(crate) const RTREE_REBUILD_MIN: usize = 10_000;

/// Inserts or updates (by id) every record of one layer with two prepared statements;
/// returns how many and their combined envelope.
pub(crate) fn bulk_layer<'a, R: Row + 'a>(
    conn: &Connection,
    records: impl ExactSizeIterator<Item = &'a R>,
    stamp: &str,
) -> StoreResult<(usize, Option<Envelope>)> {
    let n = records.len();
    let records: Vec<&R> = records.collect();
    bulk_layer_fed::<R>(conn, n, stamp, |write| write(&records))
}

/// Rows per INSERT statement when a bulk load fills an empty table (see
/// [`bulk_layer_fed`]).
pub(crate) const MULTI_ROWS: usize = 32;

/// The body of [`bulk_layer`] for records that arrive in pieces: `feed` calls `write` on
/// each piece. `expected` (a count or an estimate) decides whether the R*Tree is rebuilt
/// once at the end instead of maintained row by row.
pub(crate) fn bulk_layer_fed<R: Row>(
    conn: &Connection,
    expected: usize,
    stamp: &str,
    feed: impl FnOnce(&mut dyn FnMut(&[&R]) -> StoreResult<()>) -> StoreResult<()>,
) -> StoreResult<(usize, Option<Envelope>)> {
    let t = R::table();
    let (rebuild, existing) = match t.geom {
        Some(_) if expected >= RTREE_REBUILD_MIN => {
            let existing: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| {
                    r.get(0)
                })
                .sql()?;
            (
                i64::try_from(expected).unwrap_or(i64::MAX) >= existing,
                existing,
            )
        }
        _ => (false, 0),
    };
    // A large load into an empty table.
    let fresh = rebuild && existing == 0;
    // Inside the transaction: a failure or a crash restores the triggers with everything else.
    let triggers = if rebuild {
        suspend_rtree_triggers(conn, t)?
    } else {
        Vec::new()
    };
    // Into an empty table, the table's own indexes are built once at the end too: sorting
    // a million keys is several times cheaper than a million random B-tree inserts.
    let indexes = if fresh {
        suspend_indexes(conn, t)?
    } else {
        Vec::new()
    };
    // Into an empty table, the boxes computed while encoding are the whole index; otherwise
    // the rebuild reads them back from the table.
    let mut boxes: Option<Vec<gpkg_rtree::Entry>> = fresh.then(|| Vec::with_capacity(expected));
    let mut insert = conn.prepare(&t.insert_new_sql()).sql()?;
    let mut update = conn.prepare(&t.update_sql()).sql()?;
    // Into an empty table, rows with their own ids go in MULTI_ROWS to a statement: the
    // per-statement work (and the AUTOINCREMENT bookkeeping) is then paid once per group,
    // a good part of SQLite's cost per row. A group the store refuses (an id given twice,
    // a bad reference) is written again row by row, which upserts or names the culprit.
    let mut multi = match fresh {
        true => Some(conn.prepare(&t.insert_many_sql(MULTI_ROWS)).sql()?),
        false => None,
    };
    let mut env: Option<Envelope> = None;
    let mut n = 0usize;
    let record_box = |boxes: &mut Option<Vec<gpkg_rtree::Entry>>, id: i64, e: Option<Envelope>| {
        if let (Some(b), Some(e)) = (boxes.as_mut(), e) {
            b.push(gpkg_rtree::Entry {
                id,
                min_x: e.min_x,
                max_x: e.max_x,
                min_y: e.min_y,
                max_y: e.max_y,
            });
        }
    };
    feed(&mut |records: &[&R]| {
        let mut rest = records;
        while !rest.is_empty() {
            let group = &rest[..rest.len().min(MULTI_ROWS)];
            rest = &rest[group.len()..];
            if let (Some(stmt), MULTI_ROWS) = (multi.as_mut(), group.len()) {
                if group.iter().all(|r| r.id() > 0) {
                    let per_row = t.cols.len() + 2;
                    let mut envs = [None; MULTI_ROWS];
                    for (k, rec) in group.iter().enumerate() {
                        envs[k] = bind_row(stmt, *rec, stamp, k * per_row)?;
                    }
                    if stmt.raw_execute().is_ok() {
                        for (rec, e) in group.iter().zip(envs) {
                            record_box(&mut boxes, rec.id(), e);
                            env = Envelope::union(env, e);
                        }
                        n += group.len();
                        continue;
                    }
                }
            }
            for rec in group {
                let (inserted, e) = write_row(conn, &mut insert, *rec, stamp)?;
                if inserted == 0 {
                    // The id exists: replace its values in place.
                    write_row(conn, &mut update, *rec, stamp)?;
                }
                let id = match rec.id() {
                    0 => conn.last_insert_rowid(),
                    id => id,
                };
                record_box(&mut boxes, id, e);
                env = Envelope::union(env, e);
                n += 1;
            }
        }
        Ok(())
    })?;
    drop(multi);
    if rebuild {
        rebuild_rtree(conn, t, boxes)?;
        for sql in triggers.iter().chain(&indexes) {
            conn.execute_batch(sql).sql()?;
        }
    }
    Ok((n, env))
}

/// Drops the table's own secondary indexes (not the implicit ones of constraints) and
/// returns their SQL, verbatim from `sqlite_master`, to recreate them after a bulk load.
pub(crate) fn suspend_indexes(conn: &Connection, t: &Table) -> StoreResult<Vec<String>> {
    let found: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT name, sql FROM sqlite_master \
                 WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
            )
            .sql()?;
        let rows = stmt
            .query_map([t.name], |r| Ok((r.get(0)?, r.get(1)?)))
            .sql()?;
        rows.collect::<rusqlite::Result<_>>().sql()?
    };
    for (name, _) in &found {
        conn.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .sql()?;
    }
    Ok(found.into_iter().map(|(_, sql)| sql).collect())
}

/// Drops the layer's `gpkg_rtree_index` triggers and returns their SQL, verbatim from
/// `sqlite_master`, so they are recreated exactly as they were.
pub(crate) fn suspend_rtree_triggers(conn: &Connection, t: &Table) -> StoreResult<Vec<String>> {
    let Some(geom) = t.geom else {
        return Ok(Vec::new());
    };
    let prefix = format!("rtree_{}_{geom}_", t.name);
    let found: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT name, sql FROM sqlite_master \
                 WHERE type = 'trigger' AND tbl_name = ?1 AND name GLOB ?2",
            )
            .sql()?;
        let rows = stmt
            .query_map(params![t.name, format!("{prefix}*")], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .sql()?;
        rows.collect::<rusqlite::Result<_>>().sql()?
    };
    for (name, _) in &found {
        conn.execute_batch(&format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\"")))
            .sql()?;
    }
    Ok(found.into_iter().map(|(_, sql)| sql).collect())
}

/// Rebuilds a layer's R*Tree: the virtual table is dropped and recreated from its own
/// `sqlite_master` SQL (deleting entries one by one from an R*Tree is far slower than
/// building a new one), then packed and written in one pass ([`gpkg_rtree::load`]) from
/// `boxes` (every row's box, when the caller has them) or from the boxes in the rows'
/// GeoPackage headers. Rows with a NULL or empty geometry get no entry, as with the
/// specification's triggers.
pub(crate) fn rebuild_rtree(
    conn: &Connection,
    t: &Table,
    boxes: Option<Vec<gpkg_rtree::Entry>>,
) -> StoreResult<()> {
    let Some(c) = t.geom else {
        return Ok(());
    };
    let (name, rtree) = (t.name, format!("rtree_{}_{c}", t.name));
    let create: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [&rtree],
            |r| r.get(0),
        )
        .sql()?;
    let mut boxes = match boxes {
        Some(b) => b,
        None => table_boxes(conn, name, c)?,
    };
    // A record written twice in one load (an upsert of its own id) keeps its last box.
    boxes.sort_by_key(|b| b.id);
    let mut deduped: Vec<gpkg_rtree::Entry> = Vec::with_capacity(boxes.len());
    for b in boxes {
        match deduped.last_mut() {
            Some(last) if last.id == b.id => *last = b,
            _ => deduped.push(b),
        }
    }
    conn.execute_batch(&format!("DROP TABLE {rtree}")).sql()?;
    conn.execute_batch(&create).sql()?;
    gpkg_rtree::load(conn, &rtree, &deduped).sql()
}

/// Every non-empty geometry's box in `table`, from the GeoPackage header's envelope where
/// it has one, else from the geometry.
pub(crate) fn table_boxes(
    conn: &Connection,
    table: &str,
    column: &str,
) -> StoreResult<Vec<gpkg_rtree::Entry>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT id, {column} FROM {table} WHERE {column} NOT NULL"
        ))
        .sql()?;
    let mut rows = stmt.query([]).sql()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let id: i64 = row.get(0).sql()?;
        let blob = match row.get_ref(1).sql()? {
            ValueRef::Blob(b) => b,
            _ => continue,
        };
        let Some(e) = blob_envelope(blob) else {
            continue;
        };
        out.push(gpkg_rtree::Entry {
            id,
            min_x: e.min_x,
            max_x: e.max_x,
            min_y: e.min_y,
            max_y: e.max_y,
        });
    }
    Ok(out)
}

pub(crate) fn bulk_load_conn(
    conn: &mut Connection,
    data: &Dataset,
    actor: &Actor,
) -> StoreResult<i64> {
    bulk_load_conn_with(conn, data, actor, |_| Ok(()))
}

/// [`bulk_load_conn`] plus `extra` run inside the same transaction just before the commit
/// (a batch import records its progress there, so rows and progress commit together).
pub(crate) fn bulk_load_conn_with(
    conn: &mut Connection,
    data: &Dataset,
    actor: &Actor,
    extra: impl FnOnce(&Connection) -> StoreResult<()>,
) -> StoreResult<i64> {
    let (_, stamp) = now();
    let tx = begin(conn)?;
    // Foreign-key order: owners, grid cells parents first (levels sort largest first),
    // nodes, pipelines (which name their nodes), risk points, sensors.
    let mut cells: Vec<&GridCell> = data.grid_cells.iter().collect();
    cells.sort_by_key(|c| c.level);
    let written = [
        (
            table(Layer::Owners),
            bulk_layer(&tx, data.owners.iter(), &stamp)?,
        ),
        (
            table(Layer::GridCells),
            bulk_layer(&tx, cells.into_iter(), &stamp)?,
        ),
        (
            table(Layer::Nodes),
            bulk_layer(&tx, data.nodes.iter(), &stamp)?,
        ),
        (
            table(Layer::Pipelines),
            bulk_layer(&tx, data.pipelines.iter(), &stamp)?,
        ),
        (
            table(Layer::RiskPoints),
            bulk_layer(&tx, data.risk_points.iter(), &stamp)?,
        ),
        (
            table(Layer::Sensors),
            bulk_layer(&tx, data.sensors.iter(), &stamp)?,
        ),
    ];
    let mut version = None;
    for (t, (n, env)) in &written {
        if *n > 0 {
            touch_contents(&tx, t, *env, &stamp)?;
            version = Some(log_change(&tx, t.layer, 0, ChangeOp::Bulk, actor, &stamp)?);
        }
    }
    // An empty data set changes nothing; it still answers with the version in force.
    let version = match version {
        Some(v) => v,
        None => current_version(&tx)?,
    };
    let mut detail = serde_json::Map::new();
    for (t, (n, _)) in &written {
        detail.insert(t.name.to_string(), json!(n));
    }
    detail.insert("version".into(), json!(version));
    log_audit(
        &tx,
        actor,
        "bulk_load",
        "dataset",
        &serde_json::Value::Object(detail),
        &stamp,
    )?;
    extra(&tx)?;
    tx.commit().sql()?;
    Ok(version)
}

/// One transaction: `owners`, then every record of `layer` that `chunks` delivers, with the
/// same bookkeeping as [`bulk_load_conn`]. An `Err` chunk aborts (nothing is written).
pub(crate) fn bulk_stream_conn(
    conn: &mut Connection,
    owners: &[Owner],
    layer: Layer,
    expected: usize,
    chunks: &mut tokio::sync::mpsc::Receiver<Result<Dataset, String>>,
    actor: &Actor,
) -> StoreResult<i64> {
    fn fed<R: Row>(
        conn: &Connection,
        expected: usize,
        stamp: &str,
        chunks: &mut tokio::sync::mpsc::Receiver<Result<Dataset, String>>,
        pick: fn(Dataset) -> Vec<R>,
    ) -> StoreResult<(usize, Option<Envelope>)> {
        bulk_layer_fed::<R>(conn, expected, stamp, |write| {
            while let Some(chunk) = chunks.blocking_recv() {
                let records = pick(chunk.map_err(StoreError::Invalid)?);
                write(&records.iter().collect::<Vec<_>>())?;
            }
            Ok(())
        })
    }
    let (_, stamp) = now();
    let tx = begin(conn)?;
    let owners_written = bulk_layer(&tx, owners.iter(), &stamp)?;
    let written = match layer {
        Layer::Pipelines => fed(&tx, expected, &stamp, chunks, |d| d.pipelines)?,
        Layer::RiskPoints => fed(&tx, expected, &stamp, chunks, |d| d.risk_points)?,
        Layer::Sensors => fed(&tx, expected, &stamp, chunks, |d| d.sensors)?,
        Layer::Nodes => fed(&tx, expected, &stamp, chunks, |d| d.nodes)?,
        // Parents must precede children, which chunks in source order cannot promise.
        Layer::GridCells | Layer::Owners => {
            return Err(StoreError::Invalid(format!(
                "{layer} cannot be loaded as a stream; use bulk_load"
            )))
        }
    };
    let mut version = None;
    for (t, (n, env)) in [
        (table(Layer::Owners), owners_written),
        (table(layer), written),
    ] {
        if n > 0 {
            touch_contents(&tx, t, env, &stamp)?;
            version = Some(log_change(&tx, t.layer, 0, ChangeOp::Bulk, actor, &stamp)?);
        }
    }
    let version = match version {
        Some(v) => v,
        None => current_version(&tx)?,
    };
    log_audit(
        &tx,
        actor,
        "bulk_load",
        "dataset",
        &json!({ "owners": owners_written.0, layer.as_str(): written.0, "version": version }),
        &stamp,
    )?;
    tx.commit().sql()?;
    Ok(version)
}

/// A row that could not be turned back into a record: the file was edited by hand or by
/// another tool. Named so the operator can find it.
pub(crate) fn unreadable(t: &Table, id: Option<i64>, e: rusqlite::Error) -> StoreError {
    match id {
        Some(id) => StoreError::Backend(BackendError::with_source(
            format!("{} {id} cannot be read: {e}", t.name),
            e,
        )),
        None => StoreError::Backend(BackendError::with_source(format!("{}: {e}", t.name), e)),
    }
}

pub(crate) fn get_one<R: Row>(conn: &Connection, id: i64) -> StoreResult<Option<Record>> {
    let t = R::table();
    let mut stmt = conn
        .prepare_cached(&format!("{} WHERE id = ?1", t.select_sql()))
        .sql()?;
    let rec = stmt
        .query_row([id], R::from_row)
        .optional()
        .map_err(|e| unreadable(t, Some(id), e))?;
    Ok(rec.map(R::into_record))
}

pub(crate) fn load_layer<R: Row>(conn: &Connection) -> StoreResult<Vec<R>> {
    let t = R::table();
    let n: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| {
            r.get(0)
        })
        .sql()?;
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut stmt = conn
        .prepare(&format!("{} ORDER BY id", t.select_sql()))
        .sql()?;
    let mut rows = stmt.query([]).sql()?;
    while let Some(row) = rows.next().sql()? {
        let rec = R::from_row(row).map_err(|e| unreadable(t, row.get(0).ok(), e))?;
        out.push(rec);
    }
    Ok(out)
}

pub(crate) fn load_all_conn(conn: &mut Connection) -> StoreResult<Dataset> {
    // One read transaction: every layer from the same snapshot, so references agree.
    let tx = conn.transaction().sql()?;
    let data = Dataset {
        owners: load_layer(&tx)?,
        grid_cells: load_layer(&tx)?,
        nodes: load_layer(&tx)?,
        pipelines: load_layer(&tx)?,
        risk_points: load_layer(&tx)?,
        sensors: load_layer(&tx)?,
    };
    tx.commit().sql()?;
    Ok(data)
}

#[async_trait]
impl RecordStore for GpkgStore {
    async fn load_all(&self) -> StoreResult<Dataset> {
        self.read(load_all_conn).await
    }

    async fn bulk_load(&self, data: &Dataset, actor: &Actor) -> StoreResult<i64> {
        let writer = &self.writer;
        run_blocking(|| bulk_load_conn(&mut writer.lock(), data, actor))
    }

    async fn get(&self, layer: Layer, id: i64) -> StoreResult<Option<Record>> {
        self.read(move |c| match layer {
            Layer::Pipelines => get_one::<Pipeline>(c, id),
            Layer::RiskPoints => get_one::<RiskPoint>(c, id),
            Layer::GridCells => get_one::<GridCell>(c, id),
            Layer::Sensors => get_one::<Sensor>(c, id),
            Layer::Nodes => get_one::<NetworkNode>(c, id),
            Layer::Owners => get_one::<Owner>(c, id),
        })
        .await
    }

    async fn insert(&self, record: &Record, actor: &Actor) -> StoreResult<Written> {
        let (record, actor) = (record.clone(), actor.clone());
        self.write(move |c| insert_record(c, &record, &actor)).await
    }

    async fn update(&self, record: &Record, actor: &Actor) -> StoreResult<Written> {
        let (record, actor) = (record.clone(), actor.clone());
        self.write(move |c| update_record(c, &record, &actor)).await
    }

    async fn delete(&self, layer: Layer, id: i64, actor: &Actor) -> StoreResult<i64> {
        let actor = actor.clone();
        self.write(move |c| delete_record(c, layer, id, &actor))
            .await
    }
}

#[async_trait]
impl ChangeFeed for GpkgStore {
    async fn changes_since(&self, version: i64, limit: usize) -> StoreResult<Vec<Change>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT version, layer, record_id, op, actor, at FROM change_log \
                     WHERE version > ?1 ORDER BY version LIMIT ?2",
                )
                .sql()?;
            let rows = stmt
                .query_map(params![version, lim(limit)], |r| {
                    Ok(Change {
                        version: r.get(0)?,
                        layer: txt(r, 1)?,
                        record_id: r.get(2)?,
                        op: txt(r, 3)?,
                        actor: r.get(4)?,
                        at: stamp(r, 5)?,
                    })
                })
                .sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
    }
}
