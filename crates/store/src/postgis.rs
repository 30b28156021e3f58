//! The PostGIS store: the production system of record, over a `deadpool-postgres` pool of
//! `tokio-postgres` connections.
//!
//! * Schema: versioned SQL files in `migrations/postgis/` (compiled in), applied in order by
//!   [`Store::migrate`] under a transaction-level advisory lock and recorded in
//!   `schema_migrations`; [`PostgisStore::connect`] runs it.
//! * SQL: every statement lives in `postgis_queries.sql` next to this file, one per
//!   `-- name:` section, with bound parameters only.
//! * Geometries travel as (E)WKB: written with geozero's [`wkb::Encode`] and tagged
//!   EPSG:4490 by `ST_SetSRID` in SQL, read back as the binary form of `geometry` (EWKB)
//!   with geozero's [`wkb::Decode`]. Coordinates survive bit for bit.
//! * Writes: one transaction per call holding the write lock (an advisory lock, so versions
//!   commit in order), writing the data, one `change_log` row (whose trigger sends
//!   `pg_notify('lifeline_changes', version)`) and one `audit_log` row.
//! * Bulk loads: binary `COPY` into a temporary staging table per layer, then
//!   `INSERT … SELECT … ON CONFLICT (id) DO UPDATE`, all in one transaction. A load that
//!   is large (≥ 50,000 rows of a layer) and bigger than the table sets the table's GiST
//!   index and outgoing foreign keys aside inside that transaction and rebuilds them after
//!   the merge (about twice as fast; the table is locked exclusively until commit).
//! * Reads: `load_all` streams every layer (`query_raw`) inside one repeatable-read
//!   snapshot, so references between layers are consistent.
//! * Errors: SQLSTATE and constraint names are mapped to [`StoreError`] with messages that
//!   name the record at fault (`owner 99 does not exist`, `pipelines 5 is referenced by
//!   sensors`).
//!
//! There is no TLS support: the service is expected to reach PostgreSQL over a trusted
//! network or a unix socket.

use super::prelude::*;
use super::{
    backend_error, ApiKey, AuditEntry, Backend, BackendError, Counts, StoreError, StoreResult,
    Written,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::{pin_mut, TryStreamExt};
use geo_types::Geometry;
use geozero::wkb;
use lifeline_model::schema::{self, Column, Field, Schema, Stored};
use lifeline_model::{
    Actor, Change, ChangeOp, Dataset, GridCell, Layer, Owner, Pipeline, Record, RiskPoint, Role,
    Sensor,
};
use std::sync::OnceLock;
use std::time::Duration;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{IsolationLevel, NoTls, Row};

/// One schema migration: its version, a short name, and its SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only: an applied migration is never edited.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../../migrations/postgis/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "excavation",
        sql: include_str!("../../../migrations/postgis/0002_excavation.sql"),
    },
    Migration {
        version: 3,
        name: "risk",
        sql: include_str!("../../../migrations/postgis/0003_risk.sql"),
    },
    Migration {
        version: 4,
        name: "import_jobs",
        sql: include_str!("../../../migrations/postgis/0004_import_jobs.sql"),
    },
    Migration {
        version: 5,
        name: "notifications",
        sql: include_str!("../../../migrations/postgis/0005_notifications.sql"),
    },
    Migration {
        version: 7,
        name: "ticket_json_lz4",
        sql: include_str!("../../../migrations/postgis/0007_ticket_json_lz4.sql"),
    },
];

/// Advisory-lock key serialising migrations between instances ("LIFELN" + 1).
const MIGRATION_LOCK: i64 = 0x4c49_4645_4c4e_0001;
/// Advisory-lock key serialising writes ("LIFELN" + 2); see `write_lock` in the queries.
const WRITE_LOCK: i64 = 0x4c49_4645_4c4e_0002;

/// Staged rows of one layer from which a bulk load into a table smaller than the load sets
/// the GiST index and foreign keys aside (measured: below this the saving is under 0.3 s).
const LARGE_LOAD_ROWS: u64 = 50_000;

/// The statements of `postgis_queries.sql`.
const QUERIES: &str = include_str!("postgis_queries.sql");

/// The statements of one layer: the `layer.*` templates of [`QUERIES`] expanded with the
/// layer's schema ([`LayerSql::expand`]), and its large-load statements.
struct LayerSql {
    insert: String,
    update: String,
    get: String,
    all: String,
    delete: String,
    stage: String,
    copy: String,
    stage_max: String,
    merge: String,
    /// For large loads (see `set_aside` in the queries): row count, and the statements
    /// that set the GiST index and foreign keys aside and restore them. Owners have none.
    large: Option<LargeLoadSql>,
}

impl LayerSql {
    /// A `layer.*` template with the placeholders of `postgis_queries.sql` filled in from
    /// the layer's schema.
    fn expand(template: &str, layer: Layer) -> String {
        let attrs = schema::fields(layer);
        let geom = geom_column(layer);
        let n = attrs.len();
        let g = n + 2;
        let names: Vec<&str> = attrs.iter().map(|f| f.name).collect();
        let mut columns = vec!["id"];
        columns.extend(&names);
        columns.extend(geom);
        let mut values: Vec<String> = (2..n + 2).map(|i| format!("${i}")).collect();
        let mut set: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 2))
            .collect();
        let mut stage = vec!["id bigint NOT NULL".to_string()];
        stage.extend(
            attrs
                .iter()
                .map(|f| format!("{} {}", f.name, pg_type_name(f.column))),
        );
        let mut merge: Vec<String> = names.iter().map(|c| c.to_string()).collect();
        let mut excluded: Vec<String> = names
            .iter()
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        if let Some(geom) = geom {
            values.push(format!("ST_SetSRID(${g}::geometry, 4490)"));
            set.push(format!("{geom} = ST_SetSRID(${g}::geometry, 4490)"));
            stage.push(format!("{geom} geometry"));
            merge.push(format!("ST_SetSRID({geom}, 4490)"));
            excluded.push(format!("{geom} = EXCLUDED.{geom}"));
        }
        template
            .replace("{table}", layer.as_str())
            .replace("{columns}", &columns.join(", "))
            .replace("{values}", &values.join(", "))
            .replace("{set}", &set.join(", "))
            .replace("{stage_columns}", &stage.join(", "))
            .replace("{merge_values}", &merge.join(", "))
            .replace("{excluded}", &excluded.join(", "))
    }
}

/// The geometry column of a layer's table (`None` for owners).
fn geom_column(layer: Layer) -> Option<&'static str> {
    match layer {
        Layer::Owners => None,
        Layer::Sensors => Some("location"),
        _ => Some("geom"),
    }
}

/// The SQL spelling of a schema column type.
fn pg_type_name(c: Column) -> &'static str {
    match c {
        Column::Text => "text",
        Column::Real => "double precision",
        Column::BigInt => "bigint",
        Column::Int => "integer",
        Column::Date => "date",
    }
}

/// The statements of a layer's large-load path.
struct LargeLoadSql {
    count: &'static str,
    set_aside: &'static str,
    restore: &'static str,
}

/// Every statement the store runs, resolved once from [`QUERIES`].
struct Sql {
    ping: &'static str,
    write_lock: &'static str,
    bump_sequence: &'static str,
    change_insert: &'static str,
    changes_since: &'static str,
    latest_version: &'static str,
    audit_insert: &'static str,
    audit_recent: &'static str,
    key_insert: &'static str,
    key_by_hash: &'static str,
    key_revoke: &'static str,
    key_list: &'static str,
    counts: &'static str,
    migrations_table: &'static str,
    migrations_applied: &'static str,
    migration_record: &'static str,
    geometry_type: &'static str,
    /// Indexed by [`layer_index`].
    layers: [LayerSql; 5],
}

impl Sql {
    fn load() -> Result<Sql, String> {
        let q = crate::sqlfile::sections(QUERIES);
        let get = |name: &str| -> Result<&'static str, String> {
            q.get(name)
                .copied()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("statement '{name}' is missing from postgis_queries.sql"))
        };
        let layer = |l: Layer| -> Result<LayerSql, String> {
            let n = |what: &str| get(&format!("{}.{what}", l.as_str()));
            let t = |what: &str| -> Result<String, String> {
                Ok(LayerSql::expand(get(&format!("layer.{what}"))?, l))
            };
            Ok(LayerSql {
                insert: t("insert")?,
                update: t("update")?,
                get: t("get")?,
                all: t("all")?,
                delete: t("delete")?,
                stage: t("stage")?,
                copy: t("copy")?,
                stage_max: t("stage_max")?,
                merge: t("merge")?,
                large: match l {
                    Layer::Owners => None,
                    _ => Some(LargeLoadSql {
                        count: n("count")?,
                        set_aside: n("set_aside")?,
                        restore: n("restore")?,
                    }),
                },
            })
        };
        Ok(Sql {
            ping: get("ping")?,
            write_lock: get("write_lock")?,
            bump_sequence: get("bump_sequence")?,
            change_insert: get("change_insert")?,
            changes_since: get("changes_since")?,
            latest_version: get("latest_version")?,
            audit_insert: get("audit_insert")?,
            audit_recent: get("audit_recent")?,
            key_insert: get("key_insert")?,
            key_by_hash: get("key_by_hash")?,
            key_revoke: get("key_revoke")?,
            key_list: get("key_list")?,
            counts: get("counts")?,
            migrations_table: get("migrations_table")?,
            migrations_applied: get("migrations_applied")?,
            migration_record: get("migration_record")?,
            geometry_type: get("geometry_type")?,
            layers: [
                layer(Layer::Pipelines)?,
                layer(Layer::RiskPoints)?,
                layer(Layer::GridCells)?,
                layer(Layer::Sensors)?,
                layer(Layer::Owners)?,
            ],
        })
    }

    /// The statements, parsed on first use. A missing statement is a build mistake that
    /// the unit tests catch; it still surfaces as an error rather than a panic.
    fn get() -> StoreResult<&'static Sql> {
        static SQL: OnceLock<Result<Sql, String>> = OnceLock::new();
        SQL.get_or_init(Sql::load)
            .as_ref()
            .map_err(|e| StoreError::Backend(e.clone().into()))
    }

    fn layer(&self, layer: Layer) -> &LayerSql {
        &self.layers[layer_index(layer)]
    }
}

/// Position of a layer in [`Sql::layers`] (the order of [`Layer::ALL`]).
fn layer_index(layer: Layer) -> usize {
    match layer {
        Layer::Pipelines => 0,
        Layer::RiskPoints => 1,
        Layer::GridCells => 2,
        Layer::Sensors => 3,
        Layer::Owners => 4,
    }
}

/// A geometry bound as a parameter: EWKB without SRID (`ST_SetSRID` in SQL adds it).
type GeomParam = Option<wkb::Encode<Geometry<f64>>>;

/// One attribute bound as a parameter, converted to the column's type.
#[derive(Debug)]
struct Param<'a>(Field<'a>);

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
fn pg_type(c: Column) -> Type {
    match c {
        Column::Text => Type::TEXT,
        Column::Real => Type::FLOAT8,
        Column::BigInt => Type::INT8,
        Column::Int => Type::INT4,
        Column::Date => Type::DATE,
    }
}

/// How a record of one layer is bound and read: the column order of its statements in
/// `postgis_queries.sql` (id first, the schema's attributes in table order, geometry last).
/// Every [`Schema`] record has it, so no layer has a codec of its own.
trait Columns: Schema {
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
fn stored(r: &Row, i: usize, column: Column) -> Result<Stored, tokio_postgres::Error> {
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
fn geometry_at(row: &Row, idx: usize, layer: Layer) -> StoreResult<Geometry<f64>> {
    let d: wkb::Decode<Geometry<f64>> = row.try_get(idx).map_err(decode_err)?;
    d.geometry.ok_or_else(|| {
        StoreError::Backend(BackendError::new(format!(
            "{layer}: stored geometry is NULL"
        )))
    })
}

fn decode_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(BackendError::with_source(
        format!("cannot read a stored value: {e}"),
        e,
    ))
}

/// The geometry parameter of any record.
fn record_geom(rec: &Record) -> GeomParam {
    match rec {
        Record::Owner(r) => r.geom_param(),
        Record::GridCell(r) => r.geom_param(),
        Record::Pipeline(r) => r.geom_param(),
        Record::RiskPoint(r) => r.geom_param(),
        Record::Sensor(r) => r.geom_param(),
    }
}

/// The attribute parameters of any record, in its layer's column order.
fn record_attributes(rec: &Record) -> Vec<Param<'_>> {
    match rec {
        Record::Owner(r) => r.attribute_params(),
        Record::GridCell(r) => r.attribute_params(),
        Record::Pipeline(r) => r.attribute_params(),
        Record::RiskPoint(r) => r.attribute_params(),
        Record::Sensor(r) => r.attribute_params(),
    }
}

/// The whole parameter list of a record's statements: id, attributes, geometry.
fn params<'a>(
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
fn record_from_row(layer: Layer, row: &Row) -> StoreResult<Record> {
    Ok(match layer {
        Layer::Owners => Record::Owner(Owner::from_row(row)?),
        Layer::GridCells => Record::GridCell(GridCell::from_row(row)?),
        Layer::Pipelines => Record::Pipeline(Pipeline::from_row(row)?),
        Layer::RiskPoints => Record::RiskPoint(RiskPoint::from_row(row)?),
        Layer::Sensors => Record::Sensor(Sensor::from_row(row)?),
    })
}

/// The foreign key behind a constraint name (`<table>_<column>_fkey`, PostgreSQL's default
/// naming, which the migrations keep): the referencing layer, its column, and how the
/// referenced record is called in messages. From the layer schemas.
fn foreign_key(constraint: &str) -> Option<(Layer, &'static str, &'static str)> {
    Layer::ALL.iter().find_map(|layer| {
        schema::fields(*layer).into_iter().find_map(|f| {
            let r = f.refers_to?;
            (constraint
                .strip_suffix("_fkey")?
                .strip_prefix(layer.as_str())?
                == format!("_{}", f.name))
            .then_some((*layer, f.name, r.noun))
        })
    })
}

/// The value a record holds in the column a foreign-key constraint covers.
fn fk_value(rec: &Record, constraint: &str) -> Option<i64> {
    let (layer, column, _) = foreign_key(constraint)?;
    match schema::value(rec, column) {
        Field::I64(v) if rec.layer() == layer => Some(v),
        _ => None,
    }
}

/// The key value of a constraint error's detail, `Key (owner_id)=(99) is not present…`.
/// Only a fallback: the detail text is localised by the server's `lc_messages`.
fn detail_key_value(detail: &str) -> Option<i64> {
    let start = detail.find(")=(")? + 3;
    let len = detail[start..].find(')')?;
    detail[start..start + len].parse().ok()
}

/// What a statement was doing, so that a constraint error can name the record at fault.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    /// Inserting or updating this record.
    Write(&'a Record),
    /// Deleting a record.
    Delete(Layer, i64),
    /// Bulk-loading a layer.
    Bulk(Layer),
    /// Anything else (keys, audit, reads).
    Other,
}

/// Maps a database error to a [`StoreError`]: constraint violations are the client's
/// doing, everything else is the backend's.
fn map_pg(e: tokio_postgres::Error, ctx: Ctx<'_>) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // Connection refused or closed, protocol errors, conversion errors.
        return backend_error(e);
    };
    let constraint = db.constraint().unwrap_or("");
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        return StoreError::Conflict(match ctx {
            _ if constraint == "api_keys_key_hash_key" => {
                "an API key with this hash already exists".to_string()
            }
            Ctx::Write(r) => format!("{} {} already exists", r.layer(), r.id()),
            _ => match (db.table(), db.detail().and_then(detail_key_value)) {
                (Some(t), Some(id)) => format!("{t} {id} already exists"),
                _ => db.message().to_string(),
            },
        });
    }
    if *code == SqlState::FOREIGN_KEY_VIOLATION {
        let fk = foreign_key(constraint);
        return StoreError::Conflict(match (ctx, fk) {
            (Ctx::Delete(layer, id), Some((_, child, _))) => {
                format!("{layer} {id} is referenced by {child}")
            }
            (Ctx::Delete(layer, id), None) => format!("{layer} {id} is still referenced"),
            (_, Some((_, _, noun))) => {
                let value = match ctx {
                    Ctx::Write(r) => fk_value(r, constraint),
                    _ => None,
                }
                .or_else(|| db.detail().and_then(detail_key_value));
                match value {
                    Some(v) => format!("{noun} {v} does not exist"),
                    None => format!("a referenced {noun} does not exist"),
                }
            }
            (_, None) => db.message().to_string(),
        });
    }
    if *code == SqlState::CHECK_VIOLATION {
        return StoreError::Invalid(check_message(constraint, ctx));
    }
    if *code == SqlState::NOT_NULL_VIOLATION {
        return StoreError::Invalid(format!(
            "{} must not be null",
            db.column().unwrap_or("a required value")
        ));
    }
    if *code == SqlState::CARDINALITY_VIOLATION {
        // ON CONFLICT DO UPDATE reached the same row twice: a repeated id in one load.
        let layer = match ctx {
            Ctx::Bulk(l) => l.as_str(),
            _ => "a layer",
        };
        return StoreError::Conflict(format!("the data set holds an id of {layer} twice"));
    }
    if code.code().starts_with("22") {
        // Data exceptions: a geometry of the wrong type for its column, out-of-range values.
        return StoreError::Invalid(db.message().to_string());
    }
    backend_error(e)
}

/// A readable message for a violated CHECK constraint of the schema.
fn check_message(constraint: &str, ctx: Ctx<'_>) -> String {
    let what = match ctx {
        Ctx::Write(r) if r.id() != 0 => format!("{} {}", r.layer(), r.id()),
        Ctx::Write(r) => format!("new {} record", r.layer()),
        Ctx::Delete(l, id) => format!("{l} {id}"),
        Ctx::Bulk(l) => format!("a record of {l}"),
        Ctx::Other => "value".to_string(),
    };
    if constraint.ends_with("_id_positive") {
        format!("{what}: ids must be positive")
    } else if constraint.ends_with("_valid") {
        format!("invalid geometry: {what} is not valid (self-intersection, bad ring or similar)")
    } else if constraint == "risk_points_geom_type" {
        format!("invalid geometry: {what}: a risk point is a Point or a Polygon")
    } else {
        format!("{what}: violates {constraint}")
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => map_pg(e, Ctx::Other),
        other => StoreError::Backend(BackendError::new(format!(
            "no database connection: {other}"
        ))),
    }
}

/// The PostGIS implementation of [`Store`]; see the module docs.
pub struct PostgisStore {
    pool: Pool,
    /// Staged rows from which a bulk load may take the large-load path.
    large_load_rows: u64,
    sql: &'static Sql,
    describe: String,
}

impl std::fmt::Debug for PostgisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgisStore")
            .field("db", &self.describe)
            .finish_non_exhaustive()
    }
}

impl PostgisStore {
    /// Connects a pool of at most `pool_size` connections to the database `url` names
    /// (`postgres://user:password@host:port/db`) and applies pending migrations.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let sql = Sql::get()?;
        // The parse error of tokio-postgres never echoes the URL, so the password stays out
        // of logs.
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(BackendError::with_source(
                format!("invalid PostgreSQL URL: {e}"),
                e,
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            // Without a timeout an unreachable host hangs start-up instead of failing it.
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("lifeline");
        }
        let describe = describe_config(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| {
                StoreError::Backend(BackendError::with_source(
                    format!("cannot build the connection pool: {e}"),
                    e,
                ))
            })?;
        let store = PostgisStore {
            pool,
            large_load_rows: LARGE_LOAD_ROWS,
            sql,
            describe,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub(crate) async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Appends the change-log row (the caller holds the write lock) and returns its version.
    async fn log_change(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        layer: Layer,
        record_id: i64,
        op: ChangeOp,
        actor: &Actor,
    ) -> Result<i64, tokio_postgres::Error> {
        let stmt = tx.prepare_cached(self.sql.change_insert).await?;
        let row = tx
            .query_one(&stmt, &[&layer, &record_id, &op, &actor.name])
            .await?;
        row.try_get(0)
    }

    /// Appends an audit entry within `tx`.
    async fn audit_in(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<(), tokio_postgres::Error> {
        let stmt = tx.prepare_cached(self.sql.audit_insert).await?;
        tx.execute(&stmt, &[&actor.name, &actor.role, &action, &target, detail])
            .await?;
        Ok(())
    }

    /// Serialises this transaction with every other writer (held to commit).
    async fn lock_writes(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        let stmt = tx.prepare_cached(self.sql.write_lock).await?;
        tx.execute(&stmt, &[&WRITE_LOCK]).await?;
        Ok(())
    }

    /// Moves the id sequence of `layer` past `id`, so assigned ids never collide with it.
    async fn bump_sequence(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        layer: Layer,
        id: i64,
    ) -> Result<(), tokio_postgres::Error> {
        let stmt = tx.prepare_cached(self.sql.bump_sequence).await?;
        tx.execute(&stmt, &[&layer.as_str(), &id]).await?;
        Ok(())
    }

    /// Insert or update in one transaction; `insert` chooses which.
    async fn write(&self, record: &Record, actor: &Actor, insert: bool) -> StoreResult<Written> {
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
    async fn bulk_layer<'r, T: Columns + 'r>(
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
    async fn bulk_layer_stream<T: Columns>(
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
    async fn merge_staged(
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
    async fn load_layer<T: Columns>(
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

/// `postgres://user@host:port/db`, without the password.
fn describe_config(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        c.get_user().unwrap_or(""),
        c.get_dbname().unwrap_or("")
    )
}

fn api_key_from_row(r: &Row) -> StoreResult<ApiKey> {
    (|| {
        Ok(ApiKey {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            role: r.try_get(2)?,
            key_hash: r.try_get(3)?,
            created_at: r.try_get(4)?,
            revoked_at: r.try_get(5)?,
        })
    })()
    .map_err(decode_err)
}

/// A count or limit as the `bigint` SQL wants.
fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
        // Foreign-key order: owners, grid cells (parents first), pipelines, risk points,
        // sensors.
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
impl StoreInfo for PostgisStore {
    fn backend(&self) -> Backend {
        Backend::Postgis
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn migrate(&self) -> StoreResult<i64> {
        let e = |e| map_pg(e, Ctx::Other);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        // Two instances starting together: the second waits here, then finds nothing to do.
        tx.execute(self.sql.write_lock, &[&MIGRATION_LOCK])
            .await
            .map_err(e)?;
        tx.batch_execute(self.sql.migrations_table)
            .await
            .map_err(e)?;
        let applied: Vec<i64> = tx
            .query(self.sql.migrations_applied, &[])
            .await
            .map_err(e)?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(e)?;
        for m in MIGRATIONS {
            if applied.contains(&m.version) {
                continue;
            }
            tx.batch_execute(m.sql).await.map_err(|err| {
                StoreError::Backend(BackendError::new(format!(
                    "migration {:04}_{}: {err}",
                    m.version, m.name
                )))
            })?;
            tx.execute(self.sql.migration_record, &[&m.version, &m.name])
                .await
                .map_err(e)?;
        }
        tx.commit().await.map_err(e)?;
        let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
        Ok(applied.into_iter().max().unwrap_or(0).max(known))
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .query_one(self.sql.ping, &[])
            .await
            .map_err(|e| map_pg(e, Ctx::Other))?;
        Ok(())
    }

    async fn counts(&self) -> StoreResult<Counts> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let row = client.query_one(self.sql.counts, &[]).await.map_err(e)?;
        Layer::ALL
            .iter()
            .enumerate()
            .map(|(i, l)| Ok((*l, row.try_get::<_, i64>(i).map_err(decode_err)?)))
            .collect()
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

#[async_trait]
impl KeyStore for PostgisStore {
    async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        key_hash: &str,
        actor: &Actor,
    ) -> StoreResult<ApiKey> {
        let e = |e| map_pg(e, Ctx::Other);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        let stmt = tx.prepare_cached(self.sql.key_insert).await.map_err(e)?;
        let row = tx
            .query_one(&stmt, &[&name, &role, &key_hash])
            .await
            .map_err(e)?;
        let key = api_key_from_row(&row)?;
        let detail = serde_json::json!({ "name": name, "role": role.as_str() });
        self.audit_in(
            &tx,
            actor,
            "key_create",
            &format!("keys/{}", key.id),
            &detail,
        )
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(key)
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(self.sql.key_by_hash)
            .await
            .map_err(e)?;
        match client.query_opt(&stmt, &[&key_hash]).await.map_err(e)? {
            Some(row) => Ok(Some(api_key_from_row(&row)?)),
            None => Ok(None),
        }
    }

    async fn revoke_api_key(&self, id: i64, actor: &Actor) -> StoreResult<bool> {
        let e = |e| map_pg(e, Ctx::Other);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(e)?;
        let stmt = tx.prepare_cached(self.sql.key_revoke).await.map_err(e)?;
        if tx.execute(&stmt, &[&id]).await.map_err(e)? == 0 {
            return Ok(false);
        }
        let detail = serde_json::json!({});
        self.audit_in(&tx, actor, "key_revoke", &format!("keys/{id}"), &detail)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(true)
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client.prepare_cached(self.sql.key_list).await.map_err(e)?;
        client
            .query(&stmt, &[])
            .await
            .map_err(e)?
            .iter()
            .map(api_key_from_row)
            .collect()
    }
}

#[async_trait]
impl AuditLog for PostgisStore {
    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> StoreResult<()> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(self.sql.audit_insert)
            .await
            .map_err(e)?;
        client
            .execute(
                &stmt,
                &[&actor.name, &actor.role, &action, &target, &detail],
            )
            .await
            .map_err(e)?;
        Ok(())
    }

    async fn audit_log(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        let e = |e| map_pg(e, Ctx::Other);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(self.sql.audit_recent)
            .await
            .map_err(e)?;
        client
            .query(&stmt, &[&as_i64(limit)])
            .await
            .map_err(e)?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    role: r.try_get(3)?,
                    action: r.try_get(4)?,
                    target: r.try_get(5)?,
                    detail: r.try_get(6)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(decode_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::{Burial, GridLevel, PipeKind, PipeStatus, RiskLevel, RiskStatus};
    use lifeline_pgcluster as pgcluster;

    #[test]
    fn every_statement_is_present() {
        let sql = Sql::load().expect("all statements present");
        for l in Layer::ALL {
            let s = sql.layer(*l);
            assert!(s.insert.contains(l.as_str()), "{l}");
            assert!(s.merge.contains("ON CONFLICT (id)"), "{l}");
        }
        // The `-- name:` marker must not leak into a statement.
        assert!(crate::sqlfile::sections(QUERIES)
            .values()
            .all(|s| !s.contains("-- name:")));
    }

    #[test]
    fn copy_types_match_the_column_lists() {
        let g = Type::BYTEA;
        let sql = Sql::load().expect("statements");
        let cols = |l: Layer| {
            let copy = &sql.layer(l).copy;
            let inner = &copy[copy.find('(').unwrap_or(0)..copy.find(')').unwrap_or(0)];
            inner.split(',').count()
        };
        assert_eq!(Owner::copy_types(&g).len(), cols(Layer::Owners));
        assert_eq!(GridCell::copy_types(&g).len(), cols(Layer::GridCells));
        assert_eq!(Pipeline::copy_types(&g).len(), cols(Layer::Pipelines));
        assert_eq!(RiskPoint::copy_types(&g).len(), cols(Layer::RiskPoints));
        assert_eq!(Sensor::copy_types(&g).len(), cols(Layer::Sensors));
    }

    #[test]
    fn key_values_are_read_from_details() {
        assert_eq!(
            detail_key_value("Key (owner_id)=(99) is not present in table \"owners\"."),
            Some(99)
        );
        assert_eq!(detail_key_value("no key here"), None);
    }

    #[tokio::test]
    async fn describe_hides_the_password_and_migrate_is_idempotent() {
        let url = pgcluster::shared()
            .fresh_database("pg_unit")
            .expect("create database");
        let store = PostgisStore::connect(&url, 2).await.expect("connect");
        let password = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .and_then(|(cred, _)| cred.split_once(':'))
            .map(|(_, p)| p.to_string())
            .expect("the cluster URL carries a password");
        assert!(
            !store.describe().contains(&password),
            "{}",
            store.describe()
        );
        assert!(store
            .describe()
            .starts_with("postgres://lifeline@127.0.0.1:"));
        let latest = MIGRATIONS.iter().map(|m| m.version).max().unwrap();
        assert_eq!(store.migrate().await.expect("migrate again"), latest);
        store.ping().await.expect("ping");
    }

    /// A fresh store on the shared cluster.
    async fn fresh() -> (PostgisStore, String) {
        let url = pgcluster::shared()
            .fresh_database("pg_unit")
            .expect("create database");
        let store = PostgisStore::connect(&url, 2).await.expect("connect");
        (store, url)
    }

    fn owner(id: i64) -> Owner {
        Owner {
            id,
            name: "国网重庆市电力公司".into(),
            emergency_contact: "电力抢修".into(),
            emergency_phone: "95598".into(),
            email: None,
        }
    }

    fn pipe(id: i64, owner_id: i64, x: f64) -> Pipeline {
        Pipeline {
            id,
            kind: PipeKind::Power,
            sub_kind: None,
            pressure_class: None,
            voltage_kv: Some(10.0),
            material: None,
            diameter_mm: None,
            section_width_mm: None,
            section_height_mm: None,
            depth_start_m: None,
            depth_end_m: None,
            invert_start_m: None,
            invert_end_m: None,
            burial: Some(Burial::Duct),
            owner_id,
            year_built: None,
            survey_date: None,
            plan_accuracy_cm: None,
            depth_accuracy_cm: None,
            quality_level: None,
            status: PipeStatus::InService,
            geometry: geo_types::LineString::from(vec![(x, 29.5), (x + 0.001, 29.501)]),
        }
    }

    async fn fingerprint(store: &PostgisStore) -> Vec<String> {
        let q = crate::sqlfile::sections(QUERIES);
        let sql = q.get("schema_fingerprint").expect("statement");
        let client = store.client().await.expect("client");
        client
            .query(*sql, &[])
            .await
            .expect("fingerprint")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    #[tokio::test]
    async fn large_loads_restore_indexes_and_keys_exactly() {
        let (mut store, _) = fresh().await;
        store.large_load_rows = 2;
        let before = fingerprint(&store).await;
        assert!(before.iter().any(|d| d.contains("pipelines_geom_idx")));
        assert!(before
            .iter()
            .any(|d| d.contains("sensors_risk_point_id_fkey")));
        let a = Actor::cli();
        // A dangling owner on the large path: still a conflict naming it, nothing changed.
        let bad = Dataset {
            owners: vec![owner(1)],
            pipelines: vec![pipe(1, 1, 106.5), pipe(2, 77, 106.51), pipe(3, 1, 106.52)],
            ..Dataset::default()
        };
        match store.bulk_load(&bad, &a).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains("77"), "{m}"),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(fingerprint(&store).await, before);
        let good = Dataset {
            owners: vec![owner(1)],
            pipelines: (1..=5)
                .map(|i| pipe(i, 1, 106.5 + i as f64 * 0.01))
                .collect(),
            ..Dataset::default()
        };
        store.bulk_load(&good, &a).await.expect("large load");
        assert_eq!(
            fingerprint(&store).await,
            before,
            "same indexes and constraints"
        );
        let mut back = store.load_all().await.expect("load_all");
        back.pipelines.sort_by_key(|p| p.id);
        assert_eq!(back, good);
        // The restored foreign key is enforced.
        match store.insert(&Record::Pipeline(pipe(9, 5, 106.6)), &a).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains("owner 5"), "{m}"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn database_checks_are_invalid_not_backend_errors() {
        let (store, _) = fresh().await;
        let a = Actor::cli();
        store
            .insert(&Record::Owner(owner(1)), &a)
            .await
            .expect("owner");
        // A bow-tie polygon: ST_IsValid refuses it.
        let bow = geo_types::Polygon::new(
            geo_types::LineString::from(vec![
                (106.5, 29.5),
                (106.51, 29.51),
                (106.51, 29.5),
                (106.5, 29.51),
                (106.5, 29.5),
            ]),
            vec![],
        );
        let cell = GridCell {
            id: 1,
            level: GridLevel::District,
            parent_id: None,
            name: "渝中区".into(),
            code: "500103".into(),
            geometry: geo_types::MultiPolygon(vec![bow]),
        };
        match store.insert(&Record::GridCell(cell), &a).await {
            Err(StoreError::Invalid(m)) => assert!(m.contains("geometry"), "{m}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        match store
            .insert(&Record::Pipeline(pipe(-3, 1, 106.5)), &a)
            .await
        {
            Err(StoreError::Invalid(m)) => assert!(m.contains("positive"), "{m}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        // A line as a risk point: refused by the geometry-type check.
        let risk = RiskPoint {
            id: 1,
            category: "road_collapse".into(),
            level: RiskLevel::General,
            name: "测试".into(),
            grid_cell_id: None,
            responsible_unit: "单位".into(),
            responsible_person: "人".into(),
            responsible_phone: None,
            emergency_plan: None,
            last_review: None,
            next_review: None,
            status: RiskStatus::Active,
            geometry: Geometry::LineString(pipe(1, 1, 106.5).geometry),
        };
        match store.insert(&Record::RiskPoint(risk), &a).await {
            Err(StoreError::Invalid(m)) => assert!(m.contains("Point or a Polygon"), "{m}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert!(store.changes_since(0, 10).await.expect("changes").len() == 1);
    }

    #[tokio::test]
    async fn writes_notify_listeners_and_touch_updated_at() {
        let (store, url) = fresh().await;
        let (client, mut conn) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("listener connection");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(Ok(m)) = futures::StreamExt::next(&mut messages).await {
                if let tokio_postgres::AsyncMessage::Notification(n) = m {
                    let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
                }
            }
        });
        client
            .batch_execute("LISTEN lifeline_changes")
            .await
            .expect("listen");
        let a = Actor::cli();
        let w = store
            .insert(&Record::Owner(owner(1)), &a)
            .await
            .expect("insert");
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a notification in time")
            .expect("channel open");
        assert_eq!(got, ("lifeline_changes".to_string(), w.version.to_string()));

        let stamp = "SELECT updated_at FROM owners WHERE id = 1";
        let t0: chrono::DateTime<chrono::Utc> =
            client.query_one(stamp, &[]).await.expect("t0").get(0);
        let mut o = owner(1);
        o.email = Some("qiangxiu@example.cn".into());
        store.update(&Record::Owner(o), &a).await.expect("update");
        let t1: chrono::DateTime<chrono::Utc> =
            client.query_one(stamp, &[]).await.expect("t1").get(0);
        assert!(t1 > t0, "updated_at moves on update: {t0} -> {t1}");
        drop(client);
        let _ = driver.await;
    }

    #[tokio::test]
    async fn unreachable_server_is_a_backend_error() {
        // A port nothing listens on: bind one, note it, let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let url = format!("postgres://u:secret@127.0.0.1:{port}/db");
        match PostgisStore::connect(&url, 1).await {
            Err(StoreError::Backend(msg)) => assert!(!msg.contains("secret"), "{msg}"),
            other => panic!("expected a backend error, got {other:?}"),
        }
    }
}
