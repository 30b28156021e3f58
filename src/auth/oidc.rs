//! Single sign-on: this module owns the verification of OpenID Connect bearer tokens (JWTs
//! from a Keycloak-like provider) and how a verified token becomes an [`Actor`].
//!
//! * Keys: the provider's JWKS, read from a URL or a file at start-up ([`OidcVerifier::start`]
//!   fails when it cannot be read, so a wrong setting shows at once). A token whose `kid`
//!   is not in the set makes the verifier read the JWKS again (the provider has rotated its
//!   keys), at most once per [`OidcConfig::jwks_refresh_min`] so that made-up `kid`s
//!   cannot make us hammer the provider.
//! * Checks: the signature with the key the token's `kid` names, with the algorithm that
//!   key is for (the token's `alg` must be one of them, so `alg: none` and `HS*` tokens are
//!   refused whatever they claim); `iss`, `aud`, `exp` and `nbf` with a small leeway; `sub`
//!   is required. Time is the service's [`Clock`], as for every other rule (so `exp` is
//!   checked here, not by `jsonwebtoken`, which would read the system clock).
//! * Roles: the claim [`OidcConfig::roles_claim`] (a dotted path, e.g. Keycloak's
//!   `realm_access.roles`) holds a string or a list of strings; each is looked up in the
//!   role map and the highest mapped role wins. A token with no mapped value is valid but
//!   gets nothing: 403 naming the claim.
//! * The actor is named `oidc:<sub>`, which is what the audit log and the change log record.

use crate::config::OidcConfig;
use crate::model::{Actor, Clock, Role};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prefix of the name of every actor of a token: `oidc:<sub>`.
pub const ACTOR_PREFIX: &str = "oidc:";

/// Longest bearer token considered (Keycloak's are a few kilobytes).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Where the provider's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// An `https://` URL (`http://` only for a loopback host), e.g. Keycloak's
    /// `…/realms/<realm>/protocol/openid-connect/certs`.
    Url(url::Url),
    /// A JSON file holding a JWKS (`{"keys": [...]}`).
    File(PathBuf),
}

impl JwksSource {
    /// A JWKS URL, refusing plain HTTP except to this machine (keys fetched in clear
    /// could be swapped on the way).
    pub fn url(s: &str) -> Result<JwksSource, OidcError> {
        let bad = |m: &str| OidcError::Setting(format!("jwks_url '{s}': {m}"));
        let u = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        let loopback = match u.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match u.scheme() {
            "https" => Ok(JwksSource::Url(u)),
            "http" if loopback => Ok(JwksSource::Url(u)),
            "http" => Err(bad("must be https (plain http only to localhost)")),
            _ => Err(bad("must be an https URL")),
        }
    }

    async fn load(&self, http: &reqwest::Client) -> Result<Keys, OidcError> {
        let text = match self {
            JwksSource::File(p) => {
                tokio::fs::read_to_string(p)
                    .await
                    .map_err(|source| OidcError::JwksFile {
                        path: p.clone(),
                        source,
                    })?
            }
            JwksSource::Url(u) => {
                let fetch = |source| OidcError::JwksFetch {
                    url: u.to_string(),
                    source,
                };
                http.get(u.clone())
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(fetch)?
                    .text()
                    .await
                    .map_err(fetch)?
            }
        };
        Keys::parse(&text).map_err(|message| OidcError::Jwks {
            source_name: self.to_string(),
            message,
        })
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::Url(u) => write!(f, "{u}"),
            JwksSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A dotted path to a claim (`realm_access.roles`, `roles`): non-empty segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl std::str::FromStr for ClaimPath {
    type Err = OidcError;

    fn from_str(s: &str) -> Result<Self, OidcError> {
        let parts: Vec<String> = s.split('.').map(str::to_string).collect();
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(OidcError::Setting(format!(
                "roles_claim '{s}': use a claim name or a dotted path such as realm_access.roles"
            )));
        }
        Ok(ClaimPath(parts))
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl ClaimPath {
    /// The string values at this path: a string is one value, a list its strings.
    fn values<'a>(&self, claims: &'a serde_json::Value) -> Vec<&'a str> {
        let mut v = claims;
        for part in &self.0 {
            match v.get(part) {
                Some(next) => v = next,
                None => return Vec::new(),
            }
        }
        match v {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Why single sign-on cannot be set up (at start-up) or its keys not be read.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("invalid OIDC setting: {0}")]
    Setting(String),
    #[error("cannot read the JWKS file {path}: {source}")]
    JwksFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch the JWKS from {url}: {source}")]
    JwksFetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the JWKS from {source_name} is unusable: {message}")]
    Jwks {
        source_name: String,
        message: String,
    },
}

/// Why a bearer token was refused (a 401 naming the reason).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's header is malformed or names an algorithm that is not accepted (only asymmetric signatures are: alg 'none' and HS* are refused)")]
    Header(#[source] jsonwebtoken::errors::Error),
    #[error("the token's algorithm {0:?} is not accepted for its key (symmetric and unsigned tokens are refused)")]
    Algorithm(Algorithm),
    #[error("the token is signed with an unknown key (kid '{0}')")]
    UnknownKey(String),
    #[error("the token names no key (kid) and the provider has several")]
    NoKid,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's audience is not this service")]
    Audience,
    #[error("the token's issuer is not the configured one")]
    Issuer,
    #[error("the token lacks the claim '{0}'")]
    MissingClaim(String),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::Crypto(_) => {
                TokenError::Signature
            }
            K::ExpiredSignature => TokenError::Expired,
            K::ImmatureSignature => TokenError::NotYetValid,
            K::InvalidAudience => TokenError::Audience,
            K::InvalidIssuer => TokenError::Issuer,
            K::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
            _ => TokenError::Malformed(e.to_string()),
        }
    }
}

/// One verification key of the JWKS and the algorithms it may verify.
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The usable signing keys of a JWKS.
struct Keys(Vec<Key>);

impl Keys {
    /// Keeps the asymmetric signing keys; skips encryption keys, symmetric keys and key
    /// types this library does not know (Keycloak publishes `RSA-OAEP` keys beside its
    /// signing keys), each entry on its own so one odd key does not hide the others.
    fn parse(text: &str) -> Result<Keys, String> {
        #[derive(serde::Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let keys: Vec<Key> = set
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .filter(|j| !matches!(j.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|j| {
                let algorithms = algorithms_for(&j);
                if algorithms.is_empty() {
                    return None;
                }
                let key = DecodingKey::from_jwk(&j).ok()?;
                Some(Key {
                    kid: j.common.key_id.clone(),
                    key,
                    algorithms,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err("no asymmetric signing key in it".into());
        }
        Ok(Keys(keys))
    }

    /// The key a token's `kid` names; without a `kid`, the only key if there is one.
    fn find(&self, kid: Option<&str>) -> Result<Option<&Key>, TokenError> {
        match kid {
            Some(kid) => Ok(self.0.iter().find(|k| k.kid.as_deref() == Some(kid))),
            None if self.0.len() == 1 => Ok(self.0.first()),
            None => Err(TokenError::NoKid),
        }
    }
}

/// The algorithms a JWK may verify: its `alg` if it names one, else those of its key type.
/// Symmetric (HS*) algorithms never: a JWKS is public, so an HMAC key in it is no secret.
fn algorithms_for(jwk: &Jwk) -> Vec<Algorithm> {
    let asymmetric =
        |a: &Algorithm| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => vec![],
        },
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::OctetKeyPair(p) if matches!(p.curve, EllipticCurve::Ed25519) => {
            vec![Algorithm::EdDSA]
        }
        _ => vec![],
    };
    let named = match jwk.common.key_algorithm {
        // RSA-OAEP and friends are encryption algorithms: not for verifying.
        Some(KeyAlgorithm::RSA1_5 | KeyAlgorithm::RSA_OAEP | KeyAlgorithm::RSA_OAEP_256) => {
            vec![]
        }
        Some(ka) => ka
            .to_string()
            .parse::<Algorithm>()
            .ok()
            .filter(|a| by_type.contains(a))
            .into_iter()
            .collect(),
        None => by_type,
    };
    named.into_iter().filter(asymmetric).collect()
}

/// Why a token's holder gets no role (a 403).
#[derive(Debug, thiserror::Error)]
#[error("the token is valid but none of the values of its claim '{claim}' maps to a Lifeline role (ask an administrator to map one)")]
pub struct Unmapped {
    /// The roles claim, as configured.
    pub claim: String,
}

/// Verifies bearer tokens of one provider; see the module docs.
pub struct OidcVerifier {
    issuer: String,
    audience: String,
    roles_claim: ClaimPath,
    role_map: BTreeMap<String, Role>,
    leeway: Duration,
    source: JwksSource,
    refresh_min: Duration,
    http: reqwest::Client,
    clock: Clock,
    keys: RwLock<Arc<Keys>>,
    /// When the keys were last read; the lock also makes concurrent refreshes wait for one.
    fetched: tokio::sync::Mutex<Instant>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks", &self.source.to_string())
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// Reads the JWKS once and returns the verifier, which judges `exp` and `nbf` by
    /// `clock`.
    pub async fn start(config: &OidcConfig, clock: Clock) -> Result<OidcVerifier, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| OidcError::JwksFetch {
                url: config.jwks.to_string(),
                source,
            })?;
        let keys = config.jwks.load(&http).await?;
        tracing::info!(issuer = %config.issuer, jwks = %config.jwks, keys = keys.0.len(), "single sign-on enabled");
        Ok(OidcVerifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            roles_claim: config.roles_claim.clone(),
            role_map: config.role_map.clone(),
            leeway: config.leeway,
            source: config.jwks.clone(),
            refresh_min: config.jwks_refresh_min,
            http,
            clock,
            keys: RwLock::new(Arc::new(keys)),
            fetched: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// Whether a bearer value has the shape of a JWT (three base64url parts; the third may
    /// be empty, as in an unsigned token, which [`OidcVerifier::verify`] then refuses by
    /// name rather than as an unknown key).
    pub fn looks_like_jwt(token: &str) -> bool {
        let parts: Vec<&str> = token.split('.').collect();
        token.len() <= MAX_TOKEN_BYTES
            && parts.len() == 3
            && !parts[0].is_empty()
            && !parts[1].is_empty()
            && parts.iter().all(|p| {
                p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    /// The actor a token stands for. A bad token is [`VerifyError::Token`] (401); a good
    /// one whose roles claim maps to no role is [`VerifyError::Unmapped`] (403).
    pub async fn verify(&self, token: &str) -> Result<Actor, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::Header)?;
        let keys = self.keys_for(header.kid.as_deref()).await?;
        let key = keys
            .find(header.kid.as_deref())?
            .ok_or_else(|| TokenError::UnknownKey(header.kid.clone().unwrap_or_default()))?;
        if !key.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm(header.alg).into());
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Times are checked below against the service's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)
            .map_err(TokenError::from)?;
        let now = self.clock.now().timestamp();
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        let time = |name: &str| data.claims.get(name).map(|v| v.as_i64());
        match time("exp") {
            Some(Some(exp)) if exp.saturating_add(leeway) >= now => {}
            Some(Some(_)) => return Err(TokenError::Expired.into()),
            _ => return Err(TokenError::MissingClaim("exp".into()).into()),
        }
        match time("nbf") {
            None => {}
            Some(Some(nbf)) if nbf.saturating_sub(leeway) <= now => {}
            Some(Some(_)) => return Err(TokenError::NotYetValid.into()),
            Some(None) => return Err(TokenError::Malformed("nbf is not a number".into()).into()),
        }
        let sub = data.claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TokenError::MissingClaim("sub".into()))?;
        let role = self
            .roles_claim
            .values(&data.claims)
            .into_iter()
            .filter_map(|v| self.role_map.get(v).copied())
            .max()
            .ok_or_else(|| Unmapped {
                claim: self.roles_claim.to_string(),
            })?;
        Ok(Actor {
            name: format!(
                "{ACTOR_PREFIX}{}",
                sub.chars().take(200).collect::<String>()
            ),
            key_id: None,
            role,
        })
    }

    /// The key set, read again first when it lacks `kid` and the last read is older than
    /// the refresh interval.
    async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<Keys>, TokenError> {
        let keys = self.keys.read().clone();
        let Some(kid) = kid else { return Ok(keys) };
        if keys.find(Some(kid))?.is_some() {
            return Ok(keys);
        }
        let mut fetched = self.fetched.lock().await;
        // Another request may have refreshed while this one waited for the lock.
        let current = self.keys.read().clone();
        if current.find(Some(kid))?.is_some() || fetched.elapsed() < self.refresh_min {
            return Ok(current);
        }
        *fetched = Instant::now();
        match self.source.load(&self.http).await {
            Ok(new) => {
                tracing::info!(jwks = %self.source, keys = new.0.len(), "JWKS read again for an unknown kid");
                let new = Arc::new(new);
                *self.keys.write() = new.clone();
                Ok(new)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the JWKS again; keeping the old keys");
                Ok(current)
            }
        }
    }
}

/// Why [`OidcVerifier::verify`] gave no actor.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Unmapped(#[from] Unmapped),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_paths_read_strings_and_lists() {
        let claims = serde_json::json!({
            "realm_access": {"roles": ["offline_access", "lifeline-ops"]},
            "roles": "lifeline-admin",
            "n": 3
        });
        let p: ClaimPath = "realm_access.roles".parse().unwrap();
        assert_eq!(p.values(&claims), vec!["offline_access", "lifeline-ops"]);
        let p: ClaimPath = "roles".parse().unwrap();
        assert_eq!(p.values(&claims), vec!["lifeline-admin"]);
        let p: ClaimPath = "n".parse().unwrap();
        assert!(p.values(&claims).is_empty());
        let p: ClaimPath = "missing.path".parse().unwrap();
        assert!(p.values(&claims).is_empty());
        assert!("realm_access..roles".parse::<ClaimPath>().is_err());
        assert!("".parse::<ClaimPath>().is_err());
    }

    #[test]
    fn jwks_urls_must_be_https_except_loopback() {
        assert!(
            JwksSource::url("https://sso.example.cn/realms/x/protocol/openid-connect/certs")
                .is_ok()
        );
        assert!(JwksSource::url("http://127.0.0.1:8080/certs").is_ok());
        assert!(JwksSource::url("http://localhost/certs").is_ok());
        let e = JwksSource::url("http://sso.example.cn/certs").unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        assert!(JwksSource::url("not a url").is_err());
    }

    #[test]
    fn jwt_shapes_are_recognised() {
        assert!(OidcVerifier::looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(OidcVerifier::looks_like_jwt("eyJh.eyJz."));
        assert!(!OidcVerifier::looks_like_jwt("ll_0123"));
        assert!(!OidcVerifier::looks_like_jwt("a.b"));
        assert!(!OidcVerifier::looks_like_jwt("a.b.c d"));
    }

    #[test]
    fn jwks_keeps_only_asymmetric_signing_keys() {
        let text = r#"{"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "sig", "crv": "P-256", "use": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "weird", "kid": "w"}
        ]}"#;
        let keys = Keys::parse(text).expect("one usable key");
        assert_eq!(keys.0.len(), 1);
        assert_eq!(keys.0[0].kid.as_deref(), Some("sig"));
        assert_eq!(keys.0[0].algorithms, vec![Algorithm::ES256]);
        assert!(Keys::parse(r#"{"keys": []}"#).is_err());
        assert!(Keys::parse("[]").is_err());
    }
}
