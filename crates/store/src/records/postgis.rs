//! The PostGIS side of [`RecordStore`] and [`ChangeFeed`]: the layers' records bound and
//! read through their schema tables ([`Columns`], one generic codec for every layer),
//! single writes in one transaction with their change-log and audit rows, bulk loads by
//! binary `COPY` into staging tables merged by upsert (with the large-load path that sets
//! indexes and foreign keys aside), and reads that stream every layer in one snapshot.
//! The statements are the `layer.*` templates of `../postgis/queries.sql`, expanded per
//! layer from the schema.

use crate::postgis::*;
use crate::prelude::*;
use crate::{BackendError, StoreError, StoreResult, Written};
use async_trait::async_trait;
use futures::{pin_mut, TryStreamExt};
use geo_types::Geometry;
use geozero::wkb;
use lifeline_model::schema::{self, Column, Field, Schema, Stored};
use lifeline_model::{
    Actor, Change, ChangeOp, Dataset, GridCell, Layer, NetworkNode, Owner, Pipeline, Record,
    RiskPoint, Sensor,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{IsolationLevel, Row};

/// A geometry bound as a parameter: EWKB without SRID (`ST_SetSRID` in SQL adds it).
pub(crate) type GeomParam = Option<wkb::Encode<Geometry<f64>>>;

/// One attribute bound as a parameter, converted to the column's type.
#[derive(Debug)]
pub(crate) struct Param<'a>(Field<'a>);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Field::Null => Ok(IsNull::Yes),
            Field::Str(v) => v.to_sql(ty, out),
            Field::F64(v) => v.to_sql(ty, out),
            Field::I64(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Field::I64(v) => v.to_sql(ty, out),
            Field::Date(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::TEXT,
            Type::VARCHAR,
            Type::FLOAT8,
            Type::INT8,
            Type::INT4,
            Type::DATE,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}

/// The PostgreSQL type of a schema column.
pub(crate) fn pg_type(c: Column) -> Type {
    match c {
        Column::Text => Type::TEXT,
        Column::Real => Type::FLOAT8,
        Column::BigInt => Type::INT8,
        Column::Int => Type::INT4,
        Column::Date => Type::DATE,
    }
}

/// How a record of one layer is bound and read: the column order of its statements in
/// `postgis/queries.sql` (id first, the schema's attributes in table order, geometry last).
/// Every [`Schema`] record has it, so no layer has a codec of its own.
pub(crate) trait Columns: Schema {
    /// The types of the staging table's columns, for binary COPY.
    fn copy_types(geometry: &Type) -> Vec<Type> {
        let mut t = vec![Type::INT8];
        t.extend(Self::ATTRIBUTES.iter().map(|a| pg_type(a.info.column)));
        if Self::LAYER != Layer::Owners {
            t.push(geometry.clone());
        }
        t
    }

    /// The geometry to bind, if the layer has one.
    fn geom_param(&self) -> GeomParam {
        self.geometry().map(wkb::Encode)
    }

    /// The attribute parameters, in column order (the id and the geometry go around them).
    fn attribute_params(&self) -> Vec<Param<'_>> {
        Self::ATTRIBUTES
            .iter()
            .map(|a| Param((a.get)(self)))
            .collect()
    }

    /// Reads a record from a row of the layer's `get`/`all` statement.
    fn from_row(r: &Row) -> StoreResult<Self> {
        let n = Self::ATTRIBUTES.len();
        let geometry = match Self::LAYER {
            Layer::Owners => None,
            layer => Some(geometry_at(r, n + 1, layer)?),
        };
        let id: i64 = r.try_get(0).map_err(decode_err)?;
        schema::decode(
            id,
            geometry,
            |i, f| stored(r, i + 1, f.column).map_err(decode_err),
            |_, e| {
                StoreError::Backend(BackendError::new(format!(
                    "{}: cannot read stored record {id}: {e}",
                    Self::LAYER
                )))
            },
        )
    }
}

impl<R: Schema> Columns for R {}

/// The value of column `i` as the schema's column type says it is stored.
pub(crate) fn stored(r: &Row, i: usize, column: Column) -> Result<Stored, tokio_postgres::Error> {
    let v = match column {
        Column::Text => r.try_get::<_, Option<String>>(i)?.map(Stored::Text),
        Column::Real => r.try_get::<_, Option<f64>>(i)?.map(Stored::Real),
        Column::BigInt => r.try_get::<_, Option<i64>>(i)?.map(Stored::Int),
        Column::Int => r
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Stored::Int(v.into())),
        Column::Date => r
            .try_get::<_, Option<chrono::NaiveDate>>(i)?
            .map(Stored::Date),
    };
    Ok(v.unwrap_or(Stored::Null))
}

/// The decoded geometry of column `idx`.
pub(crate) fn geometry_at(row: &Row, idx: usize, layer: Layer) -> StoreResult<Geometry<f64>> {
    let d: wkb::Decode<Geometry<f64>> = row.try_get(idx).map_err(decode_err)?;
    d.geometry.ok_or_else(|| {
        StoreError::Backend(BackendError::new(format!(
            "{layer}: stored geometry is NULL"
        )))
    })
}

/// The geometry parameter of any record.
pub(crate) fn record_geom(rec: &Record) -> GeomParam {
    match rec {
        Record::Owner(r) => r.geom_param(),
        Record::GridCell(r) => r.geom_param(),
        Record::Pipeline(r) => r.geom_param(),
        Record::RiskPoint(r) => r.geom_param(),
        Record::Sensor(r) => r.geom_param(),
        Record::Node(r) => r.geom_param(),
    }
}

/// The attribute parameters of any record, in its layer's column order.
pub(crate) fn record_attributes(rec: &Record) -> Vec<Param<'_>> {
    match rec {
        Record::Owner(r) => r.attribute_params(),
        Record::GridCell(r) => r.attribute_params(),
        Record::Pipeline(r) => r.attribute_params(),
        Record::RiskPoint(r) => r.attribute_params(),
        Record::Sensor(r) => r.attribute_params(),
        Record::Node(r) => r.attribute_params(),
    }
}

/// The whole parameter list of a record's statements: id, attributes, geometry.
pub(crate) fn params<'a>(
    id: &'a i64,
    attrs: &'a [Param<'a>],
    g: &'a GeomParam,
) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut p: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(attrs.len() + 2);
    p.push(id);
    p.extend(attrs.iter().map(|a| a as &(dyn ToSql + Sync)));
    if g.is_some() {
        p.push(g);
    }
    p
}

/// A record of `layer` from a row of its `get`/`all` statement.
pub(crate) fn record_from_row(layer: Layer, row: &Row) -> StoreResult<Record> {
    Ok(match layer {
        Layer::Owners => Record::Owner(Owner::from_row(row)?),
        Layer::GridCells => Record::GridCell(GridCell::from_row(row)?),
        Layer::Pipelines => Record::Pipeline(Pipeline::from_row(row)?),
        Layer::RiskPoints => Record::RiskPoint(RiskPoint::from_row(row)?),
        Layer::Sensors => Record::Sensor(Sensor::from_row(row)?),
        Layer::Nodes => Record::Node(NetworkNode::from_row(row)?),
    })
}

impl PostgisStore {
    /// Insert or update in one transaction; `insert` chooses which.
    pub(crate) async fn write(
        &self,
        record: &Record,
        actor: &Actor,
        insert: bool,
    ) -> StoreResult<Written> {
        let layer = record.layer();
        let ctx = Ctx::Write(record);
        let e = |e| map_pg(e, ctx);
        let sql = self.sql.layer(layer);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        self.lock_writes(&tx).await.map_err(e)?;
        let g = record_geom(record);
        let id = record.id();
        let attrs = record_attributes(record);
        let params = params(&id, &attrs, &g);
        let id = if insert {
            let stmt = tx.prepare_cached(&sql.insert).await.map_err(e)?;
            let id: i64 = tx
                .query_one(&stmt, &params)
                .await
                .map_err(e)?
                .try_get(0)
                .map_err(e)?;
            if record.id() != 0 {
                self.bump_sequence(&tx, layer, id).await.map_err(e)?;
            }
            id
        } else {
            let stmt = tx.prepare_cached(&sql.update).await.map_err(e)?;
            if tx.execute(&stmt, &params).await.map_err(e)? == 0 {
                // Dropping the transaction rolls it back.
                return Err(StoreError::NotFound {
                    layer,
                    id: record.id(),
                });
            }
            record.id()
        };
        let op = if insert {
            ChangeOp::Insert
        } else {
            ChangeOp::Update
        };
        let version = self
            .log_change(&tx, layer, id, op, actor)
            .await
            .map_err(e)?;
        let detail = serde_json::json!({ "version": version });
        self.audit_in(&tx, actor, op.as_str(), &format!("{layer}/{id}"), &detail)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        let mut record = record.clone();
        record.set_id(id);
        Ok(Written { record, version })
    }

    /// Stages and merges the records of one layer inside a bulk-load transaction; returns
    /// the change-log version of the layer's `bulk` entry.
    pub(crate) async fn bulk_layer<'r, T: Columns + 'r>(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        geometry: &Type,
        records: impl Iterator<Item = &'r T>,
        actor: &Actor,
    ) -> StoreResult<i64> {
        let layer = T::LAYER;
        let e = |e| map_pg(e, Ctx::Bulk(layer));
        let sql = self.sql.layer(layer);
        let started = std::time::Instant::now();
        tx.batch_execute(&sql.stage).await.map_err(e)?;
        let sink = tx.copy_in(&sql.copy).await.map_err(e)?;
        let writer = BinaryCopyInWriter::new(sink, &T::copy_types(geometry));
        pin_mut!(writer);
        for r in records {
            let g = r.geom_param();
            let (id, attrs) = (r.id(), r.attribute_params());
            writer
                .as_mut()
                .write(&params(&id, &attrs, &g))
                .await
                .map_err(e)?;
        }
        let staged = writer.finish().await.map_err(e)?;
        self.merge_staged(tx, layer, staged, started, actor).await
    }

    /// [`Self::bulk_layer`] for records that arrive in chunks while they are still being
    /// read and converted: each chunk goes into the COPY as it comes. An `Err` chunk
    /// aborts the COPY (and so the caller's transaction).
    pub(crate) async fn bulk_layer_stream<T: Columns>(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        geometry: &Type,
        chunks: &mut tokio::sync::mpsc::Receiver<Result<Dataset, String>>,
        pick: fn(Dataset) -> Vec<T>,
        actor: &Actor,
    ) -> StoreResult<i64> {
        let layer = T::LAYER;
        let e = |e| map_pg(e, Ctx::Bulk(layer));
        let sql = self.sql.layer(layer);
        let started = std::time::Instant::now();
        tx.batch_execute(&sql.stage).await.map_err(e)?;
        let sink = tx.copy_in(&sql.copy).await.map_err(e)?;
        let writer = BinaryCopyInWriter::new(sink, &T::copy_types(geometry));
        pin_mut!(writer);
        while let Some(chunk) = chunks.recv().await {
            for r in &pick(chunk.map_err(StoreError::Invalid)?) {
                let g = r.geom_param();
                let (id, attrs) = (r.id(), r.attribute_params());
                writer
                    .as_mut()
                    .write(&params(&id, &attrs, &g))
                    .await
                    .map_err(e)?;
            }
        }
        let staged = writer.finish().await.map_err(e)?;
        self.merge_staged(tx, layer, staged, started, actor).await
    }

    /// Merges the staged rows of a layer into its table (see the module docs) and logs
    /// the layer's `bulk` change; returns its version.
    pub(crate) async fn merge_staged(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        layer: Layer,
        staged: u64,
        started: std::time::Instant,
        actor: &Actor,
    ) -> StoreResult<i64> {
        let e = |e| map_pg(e, Ctx::Bulk(layer));
        let sql = self.sql.layer(layer);
        let copy_s = started.elapsed().as_secs_f64();
        // Ids are assigned to id-0 records by the sequence: move it past the explicit ids
        // of the load first, so an assigned id cannot collide with one of them.
        let max: Option<i64> = tx
            .query_one(&sql.stage_max, &[])
            .await
            .map_err(e)?
            .try_get(0)
            .map_err(e)?;
        if let Some(max) = max {
            self.bump_sequence(tx, layer, max).await.map_err(e)?;
        }
        let large = match &sql.large {
            Some(large) if staged >= self.large_load_rows => {
                let existing: i64 = tx
                    .query_one(large.count, &[])
                    .await
                    .map_err(e)?
                    .try_get(0)
                    .map_err(e)?;
                // Only when the load dominates the table: rebuilding the index costs in
                // proportion to the whole table, maintaining it to the rows loaded.
                (u64::try_from(existing).unwrap_or(0) < staged).then_some(large)
            }
            _ => None,
        };
        if let Some(large) = large {
            tx.batch_execute(large.set_aside).await.map_err(e)?;
        }
        let merged = tx.execute(&sql.merge, &[]).await.map_err(e)?;
        if let Some(large) = large {
            tx.batch_execute(large.restore).await.map_err(e)?;
        }
        tracing::debug!(
            %layer,
            staged,
            merged,
            large = large.is_some(),
            copy_s,
            total_s = started.elapsed().as_secs_f64(),
            "bulk-loaded a layer"
        );
        self.log_change(tx, layer, 0, ChangeOp::Bulk, actor)
            .await
            .map_err(e)
    }

    /// Streams every record of one layer into `out` (within the caller's snapshot).
    pub(crate) async fn load_layer<T: Columns>(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        out: &mut Vec<T>,
    ) -> StoreResult<()> {
        let e = |e| map_pg(e, Ctx::Other);
        let stmt = tx
            .prepare_cached(&self.sql.layer(T::LAYER).all)
            .await
            .map_err(e)?;
        let rows = tx
            .query_raw(&stmt, std::iter::empty::<i64>())
            .await
            .map_err(e)?;
        pin_mut!(rows);
        while let Some(row) = rows.try_next().await.map_err(e)? {
            out.push(T::from_row(&row)?);
        }
        Ok(())
    }
}

impl PostgisStore {
    /// A one-transaction bulk load of `owners` and one layer whose records arrive in chunks
    /// while they are still being read and converted (see
    /// [`super::import_jobs::ImportJobStore::bulk_load_stream`]).
    pub(crate) async fn bulk_load_stream(
        &self,
        owners: Vec<Owner>,
        layer: Layer,
        mut chunks: tokio::sync::mpsc::Receiver<Result<Dataset, String>>,
        actor: &Actor,
    ) -> StoreResult<i64> {
        let e = |e| map_pg(e, Ctx::Other);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        self.lock_writes(&tx).await.map_err(e)?;
        let geometry = tx
            .prepare(self.sql.geometry_type)
            .await
            .map_err(e)?
            .columns()
            .first()
            .map(|c| c.type_().clone())
            .ok_or_else(|| StoreError::Backend("cannot learn the geometry type".into()))?;
        if !owners.is_empty() {
            self.bulk_layer(&tx, &geometry, owners.iter(), actor)
                .await?;
        }
        let c = &mut chunks;
        let version = match layer {
            Layer::Pipelines => {
                self.bulk_layer_stream(&tx, &geometry, c, |d| d.pipelines, actor)
                    .await?
            }
            Layer::RiskPoints => {
                self.bulk_layer_stream(&tx, &geometry, c, |d| d.risk_points, actor)
                    .await?
            }
            Layer::Sensors => {
                self.bulk_layer_stream(&tx, &geometry, c, |d| d.sensors, actor)
                    .await?
            }
            Layer::Nodes => {
                self.bulk_layer_stream(&tx, &geometry, c, |d| d.nodes, actor)
                    .await?
            }
            // Parents must precede children, which chunks in source order cannot promise.
            Layer::GridCells | Layer::Owners => {
                return Err(StoreError::Invalid(format!(
                    "{layer} cannot be loaded as a stream; use bulk_load"
                )))
            }
        };
        let detail = serde_json::json!({ "version": version, "layer": layer.as_str(), "owners": owners.len() });
        self.audit_in(&tx, actor, "bulk_load", "dataset", &detail)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(version)
    }

    /// `bulk_load` with one `extra` statement run in the same transaction before the commit
    /// (the import job's progress row, see [`super::import_jobs`]).
    pub(crate) async fn bulk_load_with(
        &self,
        data: &Dataset,
        actor: &Actor,
        extra: Option<(&str, &[&(dyn ToSql + Sync)])>,
    ) -> StoreResult<i64> {
        let e = |e| map_pg(e, Ctx::Other);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        self.lock_writes(&tx).await.map_err(e)?;
        let geometry = tx
            .prepare(self.sql.geometry_type)
            .await
            .map_err(e)?
            .columns()
            .first()
            .map(|c| c.type_().clone())
            .ok_or_else(|| StoreError::Backend("cannot learn the geometry type".into()))?;
        let mut version = None;
        // Foreign-key order: owners, grid cells (parents first), nodes, pipelines (which
        // name their nodes), risk points, sensors.
        if !data.owners.is_empty() {
            version = Some(
                self.bulk_layer(&tx, &geometry, data.owners.iter(), actor)
                    .await?,
            );
        }
        if !data.grid_cells.is_empty() {
            let mut cells: Vec<&GridCell> = data.grid_cells.iter().collect();
            cells.sort_by_key(|c| c.level);
            version = Some(
                self.bulk_layer(&tx, &geometry, cells.into_iter(), actor)
                    .await?,
            );
        }
        if !data.nodes.is_empty() {
            version = Some(
                self.bulk_layer(&tx, &geometry, data.nodes.iter(), actor)
                    .await?,
            );
        }
        if !data.pipelines.is_empty() {
            version = Some(
                self.bulk_layer(&tx, &geometry, data.pipelines.iter(), actor)
                    .await?,
            );
        }
        if !data.risk_points.is_empty() {
            version = Some(
                self.bulk_layer(&tx, &geometry, data.risk_points.iter(), actor)
                    .await?,
            );
        }
        if !data.sensors.is_empty() {
            version = Some(
                self.bulk_layer(&tx, &geometry, data.sensors.iter(), actor)
                    .await?,
            );
        }
        let version = match version {
            Some(v) => v,
            None => tx
                .query_one(self.sql.latest_version, &[])
                .await
                .map_err(e)?
                .try_get(0)
                .map_err(e)?,
        };
        let counts: serde_json::Map<String, serde_json::Value> = data
            .counts()
            .iter()
            .map(|(l, n)| (l.as_str().to_string(), (*n).into()))
            .collect();
        let detail = serde_json::json!({ "version": version, "counts": counts });
        self.audit_in(&tx, actor, "bulk_load", "dataset", &detail)
            .await
            .map_err(e)?;
        if let Some((sql, params)) = extra {
            tx.execute(sql, params).await.map_err(e)?;
        }
        tx.commit().await.map_err(e)?;
        Ok(version)
    }
}

#[async_trait]
impl RecordStore for PostgisStore {
    async fn load_all(&self) -> StoreResult<Dataset> {
        let e = |e| map_pg(e, Ctx::Other);
        let mut client = self.client().await?;
        // One snapshot for all layers, so references between them are consistent.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(e)?;
        let mut data = Dataset::default();
        self.load_layer(&tx, &mut data.owners).await?;
        self.load_layer(&tx, &mut data.grid_cells).await?;
        self.load_layer(&tx, &mut data.nodes).await?;
        self.load_layer(&tx, &mut data.pipelines).await?;
        self.load_layer(&tx, &mut data.risk_points).await?;
        self.load_layer(&tx, &mut data.sensors).await?;
        tx.commit().await.map_err(e)?;
        Ok(data)
    }

    async fn bulk_load(&self, data: &Dataset, actor: &Actor) -> StoreResult<i64> {
        self.bulk_load_with(data, actor, None).await
    }

    async fn get(&self, layer: Layer, id: i64) -> StoreResult<Option<Record>> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&self.sql.layer(layer).get)
            .await
            .map_err(e)?;
        match client.query_opt(&stmt, &[&id]).await.map_err(e)? {
            Some(row) => Ok(Some(record_from_row(layer, &row)?)),
            None => Ok(None),
        }
    }

    async fn insert(&self, record: &Record, actor: &Actor) -> StoreResult<Written> {
        self.write(record, actor, true).await
    }

    async fn update(&self, record: &Record, actor: &Actor) -> StoreResult<Written> {
        self.write(record, actor, false).await
    }

    async fn delete(&self, layer: Layer, id: i64, actor: &Actor) -> StoreResult<i64> {
        let e = |e| map_pg(e, Ctx::Delete(layer, id));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        self.lock_writes(&tx).await.map_err(e)?;
        let stmt = tx
            .prepare_cached(&self.sql.layer(layer).delete)
            .await
            .map_err(e)?;
        if tx.execute(&stmt, &[&id]).await.map_err(e)? == 0 {
            return Err(StoreError::NotFound { layer, id });
        }
        let version = self
            .log_change(&tx, layer, id, ChangeOp::Delete, actor)
            .await
            .map_err(e)?;
        let detail = serde_json::json!({ "version": version });
        self.audit_in(&tx, actor, "delete", &format!("{layer}/{id}"), &detail)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(version)
    }
}

#[async_trait]
impl ChangeFeed for PostgisStore {
    async fn changes_since(&self, version: i64, limit: usize) -> StoreResult<Vec<Change>> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(self.sql.changes_since)
            .await
            .map_err(e)?;
        client
            .query(&stmt, &[&version, &as_i64(limit)])
            .await
            .map_err(e)?
            .iter()
            .map(|r| {
                Ok(Change {
                    version: r.try_get(0)?,
                    layer: r.try_get(1)?,
                    record_id: r.try_get(2)?,
                    op: r.try_get(3)?,
                    actor: r.try_get(4)?,
                    at: r.try_get(5)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(decode_err)
    }
}
