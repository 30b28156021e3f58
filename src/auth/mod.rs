//! Access control: API keys (random, shown once, stored only as SHA-256 hashes), the role
//! each key carries, and the [`Authenticator`] that turns a request's `Authorization:
//! Bearer …` or `X-Api-Key` header into an [`Actor`]. Verified keys are cached for
//! [`CACHE_TTL`] so map tiles do not hit the store per request; a revocation therefore takes
//! effect within that time on other instances (immediately on the instance that revoked).
//!
//! With single sign-on configured, a bearer value that is not an `ll_` key but has the
//! shape of a JWT goes to the [`oidc::OidcVerifier`] instead (see [`oidc`]).

pub mod oidc;

use crate::model::{Actor, Role};
use crate::store::{KeyStore, StoreError};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a verified key is trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// Prefix of every key, so leaked keys are recognisable by secret scanners.
pub const KEY_PREFIX: &str = "ll_";

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("an API key is required (send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>')")]
    Missing,
    #[error("the API key is not valid or has been revoked")]
    Invalid,
    /// A bearer token (single sign-on) that is invalid, expired, for someone else, or
    /// signed with a key we do not trust.
    #[error("{0}")]
    Token(#[from] oidc::TokenError),
    /// A valid token whose roles claim maps to no Lifeline role.
    #[error(transparent)]
    Unmapped(#[from] oidc::Unmapped),
    #[error(transparent)]
    Forbidden(#[from] crate::model::access::Forbidden),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AuthError> for crate::AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid | AuthError::Token(_) => {
                crate::AppError::Unauthorized(e.to_string())
            }
            AuthError::Forbidden(_) | AuthError::Unmapped(_) => {
                crate::AppError::Forbidden(e.to_string())
            }
            AuthError::Store(s) => s.into(),
        }
    }
}

/// A fresh random key: `ll_` + 40 hex characters (160 bits).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The hash stored for a key. Keys are random and long, so an unsalted fast hash is
/// enough: there is nothing to brute-force.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Checks that an actor has at least `role`.
pub fn require(actor: &Actor, role: Role) -> Result<(), AuthError> {
    Ok(crate::model::access::require(actor, role)?)
}

/// Resolves request credentials to actors.
pub struct Authenticator {
    store: Arc<dyn KeyStore>,
    anonymous: Option<Role>,
    cache: Mutex<HashMap<String, (Actor, Instant)>>,
    /// Single sign-on, when configured.
    oidc: Option<oidc::OidcVerifier>,
}

impl Authenticator {
    /// `anonymous`: the role of callers without a key, or `None` to refuse them.
    pub fn new(store: Arc<dyn KeyStore>, anonymous: Option<Role>) -> Self {
        Authenticator {
            store,
            anonymous,
            cache: Mutex::new(HashMap::new()),
            oidc: None,
        }
    }

    /// Also accepts bearer tokens that `verifier` verifies.
    pub fn with_oidc(mut self, verifier: oidc::OidcVerifier) -> Self {
        self.oidc = Some(verifier);
        self
    }

    /// The actor for an optional presented key or (with single sign-on) bearer token.
    pub async fn authenticate(&self, key: Option<&str>) -> Result<Actor, AuthError> {
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return self
                .anonymous
                .map(Actor::anonymous)
                .ok_or(AuthError::Missing);
        };
        if !key.starts_with(KEY_PREFIX) {
            return match &self.oidc {
                Some(v) if oidc::OidcVerifier::looks_like_jwt(key) => {
                    v.verify(key).await.map_err(|e| match e {
                        oidc::VerifyError::Token(t) => AuthError::Token(t),
                        oidc::VerifyError::Unmapped(u) => AuthError::Unmapped(u),
                    })
                }
                _ => Err(AuthError::Invalid),
            };
        }
        if key.len() > 128 {
            return Err(AuthError::Invalid);
        }
        let hash = hash_key(key);
        if let Some((actor, at)) = self.cache.lock().get(&hash) {
            if at.elapsed() < CACHE_TTL {
                return Ok(actor.clone());
            }
        }
        let found = self.store.api_key_by_hash(&hash).await?;
        let Some(k) = found.filter(|k| k.revoked_at.is_none()) else {
            self.cache.lock().remove(&hash);
            return Err(AuthError::Invalid);
        };
        let actor = Actor {
            name: k.name,
            key_id: Some(k.id),
            role: k.role,
        };
        let mut cache = self.cache.lock();
        // Bound the cache: a flood of distinct valid keys is unlikely, but memory must not grow without limit.
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (actor.clone(), Instant::now()));
        Ok(actor)
    }

    /// Forgets a cached key at once (after revoking it through this instance).
    pub fn forget(&self, key_id: i64) {
        self.cache
            .lock()
            .retain(|_, (a, _)| a.key_id != Some(key_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hash_stably() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == 43);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), a);
    }

    #[test]
    fn roles_are_ordered() {
        let op = Actor::anonymous(Role::Operator);
        assert!(require(&op, Role::Analyst).is_ok());
        let e = require(&Actor::anonymous(Role::Viewer), Role::Operator).unwrap_err();
        assert!(e.to_string().contains("operator"));
    }
}
