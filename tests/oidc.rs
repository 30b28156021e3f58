//! Single sign-on against the real server: bearer JWTs signed with ES256 keys generated per
//! run, the provider's JWKS from a file the test writes or from a URL served by a small
//! axum server in the test (standing in for Keycloak's `…/openid-connect/certs`).

mod app;

use app::{fixtures, Backend, TestApp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use lifeline::auth::oidc::JwksSource;
use lifeline::config::OidcConfig;
use lifeline::model::Role;
use rcgen::KeyPair;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISSUER: &str = "https://sso.example.cn/realms/chongqing";
const AUDIENCE: &str = "lifeline";

/// A signing key of the made-up provider and its `kid`.
struct SigningKey {
    kid: String,
    pair: KeyPair,
}

impl SigningKey {
    fn new(kid: &str) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            pair: KeyPair::generate().expect("P-256 key"),
        }
    }

    /// The public key as a JWK (the uncompressed point is 0x04 ‖ x ‖ y).
    fn jwk(&self) -> Value {
        let raw = self.pair.public_key_raw();
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
               "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65])})
    }

    /// `claims` signed with this key, naming `kid`.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.into());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.pair.serialize_pem().as_bytes())
            .expect("PKCS#8 EC key");
        jsonwebtoken::encode(&header, claims, &key).expect("sign")
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }
}

fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// Keycloak-shaped claims for `sub` with realm roles `roles`, valid for an hour by the
/// test clock (the server's).
fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = app::now().timestamp();
    json!({"iss": ISSUER, "aud": [AUDIENCE, "account"], "sub": sub, "iat": now,
           "exp": now + 3600, "preferred_username": sub,
           "realm_access": {"roles": roles}})
}

fn oidc_config(jwks: JwksSource, refresh_min: Duration) -> OidcConfig {
    OidcConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks,
        roles_claim: OidcConfig::DEFAULT_ROLES_CLAIM.parse().expect("claim path"),
        role_map: [
            ("gis-viewers".to_string(), Role::Viewer),
            ("gis-ops".to_string(), Role::Operator),
            ("gis-admins".to_string(), Role::Admin),
        ]
        .into_iter()
        .collect(),
        leeway: Duration::from_secs(60),
        jwks_refresh_min: refresh_min,
    }
}

/// A server (anonymous access off) whose provider's JWKS is the file `jwks` is written to.
async fn start_with_file(jwks: &Value) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).expect("write JWKS");
    let config = oidc_config(JwksSource::File(path), Duration::from_secs(30));
    let app = TestApp::start_configured(Backend::Gpkg, None, true, |c| c.oidc = Some(config)).await;
    (app, dir)
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> (StatusCode, Value) {
    call_with(app, method, path, token, None).await
}

async fn call_with(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_acts_with_its_mapped_role_and_its_subject_is_audited() {
    let key = SigningKey::new("k1");
    let (app, _dir) = start_with_file(&jwks(&[&key])).await;
    let operator = key.sign(&claims("3f9c-ops-user", &["offline_access", "gis-ops"]));
    let (s, me) = call(&app, Method::GET, "/me", &operator).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("oidc:3f9c-ops-user"), Some("operator"))
    );
    assert_eq!(me["authenticated"], true, "{me}");
    // An operator's write succeeds; the admin-only audit log is refused.
    let (s, created) = call_with(
        &app,
        Method::POST,
        "/features/pipelines",
        &operator,
        Some(fixtures::pipe_feature()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"]
        .as_i64()
        .or_else(|| created["properties"]["id"].as_i64())
        .expect("new id");
    let (s, v) = call(&app, Method::GET, "/admin/audit", &operator).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // The highest mapped role wins: viewer and admin make an admin, who reads the audit
    // log and finds the operator's subject on the write.
    let admin = key.sign(&claims("7a01-admin", &["gis-viewers", "gis-admins"]));
    let (s, v) = call(&app, Method::GET, "/admin/audit?limit=50", &admin).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().expect("entries");
    assert!(
        entries.iter().any(|e| e["actor"] == "oidc:3f9c-ops-user"
            && e["role"] == "operator"
            && e["target"].as_str().unwrap_or("").contains(&id.to_string())),
        "{v}"
    );
    // API keys still work beside tokens.
    let (s, v) = call(&app, Method::GET, "/me", &app.keys[&Role::Analyst]).await;
    assert_eq!((s, v["role"].as_str()), (StatusCode::OK, Some("analyst")));
    app.stop().await;
}

/// Asserts a 401 JSON error whose message names `needle`.
async fn refused(app: &TestApp, token: &str, needle: &str) {
    let (s, v) = call(app, Method::GET, "/me", token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{needle}: {v}");
    assert_eq!(v["error"]["code"], "unauthorized", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{needle}: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_naming_the_reason() {
    let key = SigningKey::new("k1");
    let (app, _dir) = start_with_file(&jwks(&[&key])).await;
    let good = claims("u1", &["gis-ops"]);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let now = app::now().timestamp();
    // Expired beyond the leeway.
    refused(&app, &key.sign(&with("exp", json!(now - 600))), "expired").await;
    // Within the leeway it still counts.
    let (s, _) = call(
        &app,
        Method::GET,
        "/me",
        &key.sign(&with("exp", json!(now - 10))),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    refused(
        &app,
        &key.sign(&with("nbf", json!(now + 600))),
        "not valid yet",
    )
    .await;
    refused(
        &app,
        &key.sign(&with("aud", json!("someone-else"))),
        "audience",
    )
    .await;
    refused(
        &app,
        &key.sign(&with("iss", json!("https://evil.example/realms/x"))),
        "issuer",
    )
    .await;
    // Another key claiming to be k1, and another key under its own unknown kid.
    let other = SigningKey::new("k9");
    refused(&app, &other.sign_as("k1", &good), "signature").await;
    refused(&app, &other.sign(&good), "unknown key (kid 'k9')").await;
    // Unsigned.
    let none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT", "kid": "k1"}).to_string()),
        B64.encode(good.to_string())
    );
    refused(&app, &none, "algorithm").await;
    // HS256 with the public key's bytes as the secret (the classic key-confusion attack).
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &header,
        &good,
        &jsonwebtoken::EncodingKey::from_secret(key.pair.public_key_raw()),
    )
    .expect("sign HS256");
    refused(&app, &hs, "algorithm").await;
    // No sub.
    let mut no_sub = good.clone();
    no_sub.as_object_mut().expect("object").remove("sub");
    refused(&app, &key.sign(&no_sub), "sub").await;
    // Not a token at all, nor a key.
    refused(&app, "eyJhbGciOi.eyJzdWIi.c2ln", "malformed").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_without_a_mapped_role_is_403_naming_the_claim() {
    let key = SigningKey::new("k1");
    let (app, _dir) = start_with_file(&jwks(&[&key])).await;
    let token = key.sign(&claims("u2", &["offline_access", "uma_authorization"]));
    let (s, v) = call(&app, Method::GET, "/me", &token).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("'realm_access.roles'"), "{msg}");
    app.stop().await;
}

/// A stand-in for the provider's JWKS endpoint: serves the current set and counts reads.
struct Provider {
    url: String,
    jwks: Arc<Mutex<Value>>,
    reads: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

async fn provider(initial: Value) -> Provider {
    let jwks = Arc::new(Mutex::new(initial));
    let reads = Arc::new(AtomicUsize::new(0));
    let (j, r) = (jwks.clone(), reads.clone());
    let router = axum::Router::new().route(
        "/realms/chongqing/protocol/openid-connect/certs",
        axum::routing::get(move || {
            let (j, r) = (j.clone(), r.clone());
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                let body = j.lock().expect("jwks lock").clone();
                axum::Json(body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Provider {
        url: format!("http://{addr}/realms/chongqing/protocol/openid-connect/certs"),
        jwks,
        reads,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_jwks_is_read_again_when_the_provider_rotates_its_key() {
    let k1 = SigningKey::new("k1");
    let k2 = SigningKey::new("k2");
    let idp = provider(jwks(&[&k1])).await;
    let config = oidc_config(JwksSource::url(&idp.url).expect("url"), Duration::ZERO);
    let app =
        TestApp::start_configured(Backend::Gpkg, None, false, |c| c.oidc = Some(config)).await;
    assert_eq!(idp.reads.load(Ordering::SeqCst), 1, "read at start-up");
    let (s, v) = call(
        &app,
        Method::GET,
        "/me",
        &k1.sign(&claims("u3", &["gis-ops"])),
    )
    .await;
    assert_eq!(
        (s, v["role"].as_str()),
        (StatusCode::OK, Some("operator")),
        "{v}"
    );
    assert_eq!(
        idp.reads.load(Ordering::SeqCst),
        1,
        "a known kid needs no read"
    );
    // The provider rotates: k2 replaces k1.
    *idp.jwks.lock().expect("jwks lock") = jwks(&[&k2]);
    let (s, v) = call(
        &app,
        Method::GET,
        "/me",
        &k2.sign(&claims("u3", &["gis-admins"])),
    )
    .await;
    assert_eq!(
        (s, v["role"].as_str()),
        (StatusCode::OK, Some("admin")),
        "{v}"
    );
    assert_eq!(idp.reads.load(Ordering::SeqCst), 2);
    app.stop().await;
    idp.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_do_not_make_the_service_hammer_the_provider() {
    let k1 = SigningKey::new("k1");
    let idp = provider(jwks(&[&k1])).await;
    let config = oidc_config(
        JwksSource::url(&idp.url).expect("url"),
        Duration::from_secs(3600),
    );
    let app =
        TestApp::start_configured(Backend::Gpkg, None, false, |c| c.oidc = Some(config)).await;
    for i in 0..5 {
        let stranger = SigningKey::new(&format!("made-up-{i}"));
        refused(
            &app,
            &stranger.sign(&claims("u4", &["gis-admins"])),
            "unknown key",
        )
        .await;
    }
    assert_eq!(
        idp.reads.load(Ordering::SeqCst),
        1,
        "within the refresh interval of the start-up read, no further reads"
    );
    app.stop().await;
    idp.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_fails_clearly_when_the_jwks_cannot_be_read() {
    let (store, _url, _dir) = app::fresh_store(Backend::Gpkg).await;
    let config = lifeline::config::Config {
        oidc: Some(oidc_config(
            JwksSource::File("/nonexistent/jwks.json".into()),
            Duration::from_secs(30),
        )),
        ..Default::default()
    };
    let e = lifeline::AppState::with_store(store, config, app::test_clock())
        .await
        .err()
        .expect("start-up must fail");
    assert!(e.to_string().contains("/nonexistent/jwks.json"), "{e}");
}
