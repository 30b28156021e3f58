//! The PostGIS side of [`KeyStore`] and [`AuditLog`]: API keys (stored as hashes) and the
//! audit log, with their statements in `../postgis/queries.sql`.

use crate::postgis::*;
use crate::prelude::*;
use crate::{ApiKey, StoreResult};
use async_trait::async_trait;
use lifeline_model::{Actor, Role};
use tokio_postgres::Row;

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
