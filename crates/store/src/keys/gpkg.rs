//! The GeoPackage side of [`KeyStore`] and [`AuditLog`]: API keys (stored as hashes) and
//! the audit log, in the file's internal `api_keys` and `audit_log` tables.

use crate::gpkg::*;
use crate::prelude::*;
use crate::{backend_error, ApiKey, StoreError, StoreResult};
use async_trait::async_trait;
use lifeline_model::{Actor, Role};
use rusqlite::{params, OptionalExtension};
use serde_json::json;

crate::sqlfile::named_sql!(fn key_sql = "keys/gpkg.sql", include_str!("gpkg.sql"));

pub(crate) fn api_key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        role: txt(row, 2)?,
        key_hash: row.get(3)?,
        created_at: stamp(row, 4)?,
        revoked_at: row.get::<_, Option<Stamp>>(5)?.map(|s| s.0),
    })
}

#[async_trait]
impl KeyStore for GpkgStore {
    async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        key_hash: &str,
        actor: &Actor,
    ) -> StoreResult<ApiKey> {
        let (name, key_hash, actor) = (name.to_string(), key_hash.to_string(), actor.clone());
        self.write(move |c| {
            let (at, stamp) = now();
            let tx = begin(c)?;
            tx.prepare_cached(key_sql("key_insert"))
                .sql()?
                .execute(params![name, role.as_str(), key_hash, stamp])
                .map_err(|e| match extended_code(&e) {
                    Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) => {
                        StoreError::Conflict("an API key with this hash already exists".into())
                    }
                    _ if is_constraint(&e) => StoreError::Invalid(format!("api key: {e}")),
                    _ => backend_error(e),
                })?;
            let id = tx.last_insert_rowid();
            log_audit(
                &tx,
                &actor,
                "key_create",
                &format!("keys/{id}"),
                &json!({ "name": name, "role": role }),
                &stamp,
            )?;
            tx.commit().sql()?;
            Ok(ApiKey {
                id,
                name,
                role,
                key_hash,
                created_at: at,
                revoked_at: None,
            })
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let key_hash = key_hash.to_string();
        self.read(move |c| {
            c.prepare_cached(key_sql("key_by_hash"))
                .sql()?
                .query_row([key_hash], api_key_from_row)
                .optional()
                .sql()
        })
        .await
    }

    async fn revoke_api_key(&self, id: i64, actor: &Actor) -> StoreResult<bool> {
        let actor = actor.clone();
        self.write(move |c| {
            let (_, stamp) = now();
            let tx = begin(c)?;
            let n = tx
                .prepare_cached(key_sql("key_revoke"))
                .sql()?
                .execute(params![stamp, id])
                .sql()?;
            if n == 0 {
                // Nothing changed, so nothing to record: the transaction rolls back.
                return Ok(false);
            }
            log_audit(
                &tx,
                &actor,
                "key_revoke",
                &format!("keys/{id}"),
                &json!({}),
                &stamp,
            )?;
            tx.commit().sql()?;
            Ok(true)
        })
        .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(key_sql("key_list")).sql()?;
            let rows = stmt.query_map([], api_key_from_row).sql()?;
            rows.collect::<rusqlite::Result<_>>().sql()
        })
        .await
    }
}
