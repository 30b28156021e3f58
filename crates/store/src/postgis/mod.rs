//! The PostGIS store: the production system of record, over a `deadpool-postgres` pool of
//! `tokio-postgres` connections.
//!
//! This module owns the store itself: the pool, the migrations, the statements, the write
//! lock and change/audit rows shared by every write, the mapping of SQLSTATEs to
//! [`StoreError`], and [`StoreInfo`]. Each capability's PostGIS implementation lives in its
//! capability's folder beside the GeoPackage one: `records/postgis.rs` (records, bulk loads,
//! the change feed), `keys/postgis.rs` (API keys, audit log), `tickets/`, `readings/`,
//! `import_jobs/` and `pushdown/`.
//!
//! * Schema: versioned SQL files in `migrations/postgis/` (compiled in), applied in order by
//!   [`Store::migrate`] under a transaction-level advisory lock and recorded in
//!   `schema_migrations`; [`PostgisStore::connect`] runs it.
//! * SQL: the core statements live in `queries.sql` next to this file, one per `-- name:`
//!   section, with bound parameters only; the record statements there are templates
//!   expanded per layer from the layer schemas.
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
//! * TLS: the URL's `sslmode` and `sslrootcert` (libpq's names) are honoured by
//!   [`tls::PgTarget`], which every connection to PostgreSQL goes through.

use super::prelude::*;
use super::{backend_error, Backend, BackendError, Counts, PoolStatus, StoreError, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use lifeline_model::schema::{self, Column, Field};
use lifeline_model::{Actor, ChangeOp, Layer, Record};
use std::sync::OnceLock;
use std::time::Duration;
use tokio_postgres::error::SqlState;

pub mod tls;

/// One schema migration: its version, a short name, and its SQL.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// The Citus layout steps (`migrations/citus/`), applied after [`MIGRATIONS`] on a
/// coordinator with the `citus` extension. Append only, like the migrations.
pub(crate) const CITUS_LAYOUT: &[Migration] = &[Migration {
    version: 1,
    name: "layout",
    sql: include_str!("../../../../migrations/citus/0001_layout.sql"),
}];

/// Every migration, in order. Append only: an applied migration is never edited.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../../../migrations/postgis/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "excavation",
        sql: include_str!("../../../../migrations/postgis/0002_excavation.sql"),
    },
    Migration {
        version: 3,
        name: "risk",
        sql: include_str!("../../../../migrations/postgis/0003_risk.sql"),
    },
    Migration {
        version: 4,
        name: "import_jobs",
        sql: include_str!("../../../../migrations/postgis/0004_import_jobs.sql"),
    },
    Migration {
        version: 5,
        name: "notifications",
        sql: include_str!("../../../../migrations/postgis/0005_notifications.sql"),
    },
    Migration {
        version: 7,
        name: "ticket_json_lz4",
        sql: include_str!("../../../../migrations/postgis/0007_ticket_json_lz4.sql"),
    },
    Migration {
        version: 8,
        name: "nodes",
        sql: include_str!("../../../../migrations/postgis/0008_nodes.sql"),
    },
    Migration {
        version: 9,
        name: "trace_events",
        sql: include_str!("../../../../migrations/postgis/0009_trace_events.sql"),
    },
    Migration {
        version: 10,
        name: "readings_history",
        sql: include_str!("../../../../migrations/postgis/0010_readings_history.sql"),
    },
    Migration {
        version: 11,
        name: "audit",
        sql: include_str!("../../../../migrations/postgis/0011_audit.sql"),
    },
];

/// Advisory-lock key serialising migrations between instances ("LIFELN" + 1).
pub(crate) const MIGRATION_LOCK: i64 = 0x4c49_4645_4c4e_0001;
/// Advisory-lock key serialising writes ("LIFELN" + 2); see `write_lock` in the queries.
pub(crate) const WRITE_LOCK: i64 = 0x4c49_4645_4c4e_0002;

/// Staged rows of one layer from which a bulk load into a table smaller than the load sets
/// the GiST index and foreign keys aside (measured: below this the saving is under 0.3 s).
pub(crate) const LARGE_LOAD_ROWS: u64 = 50_000;

/// The statements of `postgis/queries.sql`.
pub(crate) const QUERIES: &str = include_str!("queries.sql");

/// The statements of one layer: the `layer.*` templates of [`QUERIES`] expanded with the
/// layer's schema ([`LayerSql::expand`]), and its large-load statements.
pub(crate) struct LayerSql {
    pub(crate) insert: String,
    pub(crate) update: String,
    pub(crate) get: String,
    pub(crate) all: String,
    pub(crate) delete: String,
    pub(crate) stage: String,
    pub(crate) copy: String,
    pub(crate) stage_max: String,
    pub(crate) merge: String,
    /// For large loads (see `set_aside` in the queries): row count, and the statements
    /// that set the GiST index and foreign keys aside and restore them. Owners have none.
    pub(crate) large: Option<LargeLoadSql>,
}

impl LayerSql {
    /// A `layer.*` template with the placeholders of `postgis/queries.sql` filled in from
    /// the layer's schema.
    pub(crate) fn expand(template: &str, layer: Layer) -> String {
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
pub(crate) fn geom_column(layer: Layer) -> Option<&'static str> {
    match layer {
        Layer::Owners => None,
        Layer::Sensors => Some("location"),
        _ => Some("geom"),
    }
}

/// The SQL spelling of a schema column type.
pub(crate) fn pg_type_name(c: Column) -> &'static str {
    match c {
        Column::Text => "text",
        Column::Real => "double precision",
        Column::BigInt => "bigint",
        Column::Int => "integer",
        Column::Date => "date",
    }
}

/// The statements of a layer's large-load path.
pub(crate) struct LargeLoadSql {
    pub(crate) count: &'static str,
    pub(crate) set_aside: &'static str,
    pub(crate) restore: &'static str,
}

/// Every statement the store runs, resolved once from [`QUERIES`].
pub(crate) struct Sql {
    pub(crate) ping: &'static str,
    pub(crate) write_lock: &'static str,
    pub(crate) bump_sequence: &'static str,
    pub(crate) change_insert: &'static str,
    pub(crate) changes_since: &'static str,
    pub(crate) latest_version: &'static str,
    pub(crate) audit_insert: &'static str,
    pub(crate) key_insert: &'static str,
    pub(crate) key_by_hash: &'static str,
    pub(crate) key_revoke: &'static str,
    pub(crate) key_list: &'static str,
    pub(crate) counts: &'static str,
    pub(crate) migrations_table: &'static str,
    pub(crate) migrations_applied: &'static str,
    pub(crate) migration_record: &'static str,
    pub(crate) citus_installed: &'static str,
    pub(crate) citus_layout_table: &'static str,
    pub(crate) citus_layout_applied: &'static str,
    pub(crate) citus_layout_record: &'static str,
    pub(crate) geometry_type: &'static str,
    /// Indexed by [`layer_index`].
    pub(crate) layers: [LayerSql; 6],
}

impl Sql {
    pub(crate) fn load() -> Result<Sql, String> {
        let q = crate::sqlfile::sections(QUERIES);
        let get = |name: &str| -> Result<&'static str, String> {
            q.get(name)
                .copied()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("statement '{name}' is missing from postgis/queries.sql"))
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
            key_insert: get("key_insert")?,
            key_by_hash: get("key_by_hash")?,
            key_revoke: get("key_revoke")?,
            key_list: get("key_list")?,
            counts: get("counts")?,
            migrations_table: get("migrations_table")?,
            migrations_applied: get("migrations_applied")?,
            migration_record: get("migration_record")?,
            citus_installed: get("citus_installed")?,
            citus_layout_table: get("citus_layout_table")?,
            citus_layout_applied: get("citus_layout_applied")?,
            citus_layout_record: get("citus_layout_record")?,
            geometry_type: get("geometry_type")?,
            layers: [
                layer(Layer::Pipelines)?,
                layer(Layer::RiskPoints)?,
                layer(Layer::GridCells)?,
                layer(Layer::Sensors)?,
                layer(Layer::Nodes)?,
                layer(Layer::Owners)?,
            ],
        })
    }

    /// The statements, parsed on first use. A missing statement is a build mistake that
    /// the unit tests catch; it still surfaces as an error rather than a panic.
    pub(crate) fn get() -> StoreResult<&'static Sql> {
        static SQL: OnceLock<Result<Sql, String>> = OnceLock::new();
        SQL.get_or_init(Sql::load)
            .as_ref()
            .map_err(|e| StoreError::Backend(e.clone().into()))
    }

    pub(crate) fn layer(&self, layer: Layer) -> &LayerSql {
        &self.layers[layer_index(layer)]
    }
}

/// Position of a layer in [`Sql::layers`] (the order of [`Layer::ALL`]).
pub(crate) fn layer_index(layer: Layer) -> usize {
    match layer {
        Layer::Pipelines => 0,
        Layer::RiskPoints => 1,
        Layer::GridCells => 2,
        Layer::Sensors => 3,
        Layer::Nodes => 4,
        Layer::Owners => 5,
    }
}

/// The foreign key behind a constraint name (`<table>_<column>_fkey`, PostgreSQL's default
/// naming, which the migrations keep): the referencing layer, its column, and how the
/// referenced record is called in messages. From the layer schemas.
pub(crate) fn foreign_key(constraint: &str) -> Option<(Layer, &'static str, &'static str)> {
    Layer::ALL.iter().find_map(|layer| {
        schema::fields(*layer).iter().find_map(|f| {
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
pub(crate) fn fk_value(rec: &Record, constraint: &str) -> Option<i64> {
    let (layer, column, _) = foreign_key(constraint)?;
    match schema::value(rec, column) {
        Field::I64(v) if rec.layer() == layer => Some(v),
        _ => None,
    }
}

/// The text between `marker` (ending in a quote) and the next `"` in `message`.
fn quoted_after<'m>(message: &'m str, marker: &str) -> Option<&'m str> {
    let start = message.rfind(marker)? + marker.len();
    let len = message[start..].find('"')?;
    Some(&message[start..start + len])
}

/// A table or constraint name without the shard id Citus appends when the error comes from
/// a shard (`sensors_pipeline_id_fkey_102011` → `sensors_pipeline_id_fkey`), so errors on
/// Citus name records as on PostGIS. Citus' shard ids start at 102008; no name of ours ends
/// in `_` and six or more digits.
pub(crate) fn without_shard_id(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((base, id)) if id.len() >= 6 && id.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// The key value of a constraint error's detail, `Key (owner_id)=(99) is not present…`.
/// Only a fallback: the detail text is localised by the server's `lc_messages`.
pub(crate) fn detail_key_value(detail: &str) -> Option<i64> {
    let start = detail.find(")=(")? + 3;
    let len = detail[start..].find(')')?;
    detail[start..start + len].parse().ok()
}

/// What a statement was doing, so that a constraint error can name the record at fault.
#[derive(Clone, Copy)]
pub(crate) enum Ctx<'a> {
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
pub(crate) fn map_pg(e: tokio_postgres::Error, ctx: Ctx<'_>) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // Connection refused or closed, protocol errors, conversion errors.
        return backend_error(e);
    };
    // Citus relays a worker's error without its constraint field: the name is then only in
    // the message (a fallback, since messages follow the server's `lc_messages`).
    let constraint = without_shard_id(
        db.constraint()
            .or_else(|| quoted_after(db.message(), "constraint \""))
            .unwrap_or(""),
    );
    let table = db.table().map(without_shard_id);
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        return StoreError::Conflict(match ctx {
            _ if constraint == "api_keys_key_hash_key" => {
                "an API key with this hash already exists".to_string()
            }
            Ctx::Write(r) => format!("{} {} already exists", r.layer(), r.id()),
            _ => match (table, db.detail().and_then(detail_key_value)) {
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
pub(crate) fn check_message(constraint: &str, ctx: Ctx<'_>) -> String {
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

pub(crate) fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => map_pg(e, Ctx::Other),
        other => StoreError::Backend(BackendError::new(format!(
            "no database connection: {other}"
        ))),
    }
}

/// The PostGIS implementation of [`Store`]; see the module docs.
pub struct PostgisStore {
    pub(crate) pool: Pool,
    /// Staged rows from which a bulk load may take the large-load path.
    pub(crate) large_load_rows: u64,
    pub(crate) sql: &'static Sql,
    pub(crate) describe: String,
    /// Whether the server is a Citus coordinator (learnt by [`Store::migrate`]): the few
    /// statements that differ by engine (old readings partitions to columnar) pick by it.
    pub(crate) citus: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PostgisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgisStore")
            .field("db", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Runs a migration script in `tx`. On Citus one statement per command: it refuses DDL on
/// distributed tables sent as several commands in one query string.
async fn run_script(
    tx: &tokio_postgres::Transaction<'_>,
    script: &str,
    citus: bool,
) -> Result<(), String> {
    if !citus {
        return tx.batch_execute(script).await.map_err(|e| pg_detail(&e));
    }
    for st in crate::sqlfile::statements(script)? {
        tx.batch_execute(st)
            .await
            .map_err(|e| format!("{}: {st}", pg_detail(&e)))?;
    }
    Ok(())
}

/// A PostgreSQL error with the server's message, not only "db error".
fn pg_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl PostgisStore {
    /// Lays the schema out on a Citus cluster ([`CITUS_LAYOUT`], `migrations/citus/`): each
    /// step once, in its own transaction under the migration lock, recorded in
    /// `citus_layout`. Runs after the ordinary migrations, so their tables exist.
    async fn lay_out_for_citus(&self, client: &mut deadpool_postgres::Client) -> StoreResult<()> {
        let e = |e| map_pg(e, Ctx::Other);
        for step in CITUS_LAYOUT {
            let tx = client.transaction().await.map_err(e)?;
            tx.execute(self.sql.write_lock, &[&MIGRATION_LOCK])
                .await
                .map_err(e)?;
            tx.batch_execute(self.sql.citus_layout_table)
                .await
                .map_err(e)?;
            let done = tx
                .query_opt(self.sql.citus_layout_applied, &[&step.version])
                .await
                .map_err(e)?
                .is_some();
            if done {
                continue;
            }
            run_script(&tx, step.sql, true).await.map_err(|err| {
                StoreError::Backend(BackendError::new(format!(
                    "Citus layout {:04}_{}: {err}",
                    step.version, step.name
                )))
            })?;
            tx.execute(self.sql.citus_layout_record, &[&step.version, &step.name])
                .await
                .map_err(e)?;
            tx.commit().await.map_err(e)?;
        }
        Ok(())
    }

    /// Connects a pool of at most `pool_size` connections to the database `url` names
    /// (`postgres://user:password@host:port/db`, with `?sslmode=…&sslrootcert=…` as in
    /// [`tls`]) and applies pending migrations.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let sql = Sql::get()?;
        // The parse errors never echo the URL, so the password stays out of logs.
        let target = tls::PgTarget::parse(url)
            .map_err(|e| StoreError::Backend(BackendError::with_source(e.to_string(), e)))?;
        let describe = format!(
            "{} (sslmode={})",
            describe_config(target.config()),
            target.ssl_mode().as_str()
        );
        let manager = Manager::from_config(
            target.config().clone(),
            target.tls(),
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
            citus: std::sync::atomic::AtomicBool::new(false),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub(crate) async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Appends the change-log row (the caller holds the write lock) and returns its version.
    pub(crate) async fn log_change(
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
    pub(crate) async fn audit_in(
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
    pub(crate) async fn lock_writes(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        let stmt = tx.prepare_cached(self.sql.write_lock).await?;
        tx.execute(&stmt, &[&WRITE_LOCK]).await?;
        Ok(())
    }

    /// Moves the id sequence of `layer` past `id`, so assigned ids never collide with it.
    pub(crate) async fn bump_sequence(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        layer: Layer,
        id: i64,
    ) -> Result<(), tokio_postgres::Error> {
        let stmt = tx.prepare_cached(self.sql.bump_sequence).await?;
        tx.execute(&stmt, &[&layer.as_str(), &id]).await?;
        Ok(())
    }
}

/// A value that cannot be read from a row.
pub(crate) fn decode_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(BackendError::with_source(
        format!("cannot read a stored value: {e}"),
        e,
    ))
}

/// `postgres://user@host:port/db`, without the password.
pub(crate) fn describe_config(c: &tokio_postgres::Config) -> String {
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

/// A count or limit as the `bigint` SQL wants.
pub(crate) fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl StoreInfo for PostgisStore {
    fn backend(&self) -> Backend {
        Backend::Postgis
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max: s.max_size,
            open: s.size,
            idle: s.available,
            waiting: s.waiting,
        }
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
        let citus: bool = tx
            .query_one(self.sql.citus_installed, &[])
            .await
            .map_err(e)?
            .try_get(0)
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
            let failed = |err: String| {
                StoreError::Backend(BackendError::new(format!(
                    "migration {:04}_{}: {err}",
                    m.version, m.name
                )))
            };
            run_script(&tx, m.sql, citus).await.map_err(failed)?;
            tx.execute(self.sql.migration_record, &[&m.version, &m.name])
                .await
                .map_err(e)?;
        }
        tx.commit().await.map_err(e)?;
        self.citus
            .store(citus, std::sync::atomic::Ordering::Relaxed);
        if citus {
            self.lay_out_for_citus(&mut client).await?;
        }
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

#[cfg(test)]
mod tests {

    #[test]
    fn citus_shard_ids_are_stripped_from_names() {
        assert_eq!(
            without_shard_id("sensors_pipeline_id_fkey_102011"),
            "sensors_pipeline_id_fkey"
        );
        assert_eq!(without_shard_id("sensors_102011"), "sensors");
        assert_eq!(
            without_shard_id("pipelines_owner_id_fkey"),
            "pipelines_owner_id_fkey"
        );
        assert_eq!(without_shard_id("alarms_one_open"), "alarms_one_open");
        assert_eq!(without_shard_id("t_12"), "t_12");
        assert_eq!(
            quoted_after(
                "insert or update on table \"pipelines_102009\" violates foreign key constraint \"pipelines_owner_id_fkey_102009\"",
                "constraint \""
            ),
            Some("pipelines_owner_id_fkey_102009")
        );
    }

    use super::*;
    use crate::records::postgis::Columns;
    use geo_types::Geometry;
    use lifeline_model::{
        Burial, Dataset, GridCell, GridLevel, Owner, PipeKind, PipeStatus, Pipeline, RiskLevel,
        RiskPoint, RiskStatus, Sensor,
    };
    use lifeline_pgcluster as pgcluster;
    use tokio_postgres::types::Type;

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
            from_node: None,
            to_node: None,
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
        let (client, mut conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
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
