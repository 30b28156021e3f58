//! TLS to PostgreSQL against a real server: a throwaway cluster started with `ssl=on`, a
//! server certificate for `localhost` issued by a CA made up for this run, and only
//! `hostssl` lines in `pg_hba.conf`. Each `sslmode` is judged by whether the server lets
//! the connection in and whether `pg_stat_ssl` says it is encrypted.

use lifeline_pgcluster::{Options, TempCluster, TestCa};
use lifeline_store::postgis::tls::{PgTarget, SslMode};
use lifeline_store::postgis::PostgisStore;
use lifeline_store::StoreInfo;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The TLS cluster of this test binary, the path of its CA's certificate, and the path of
/// another CA's certificate that signed nothing the server has.
struct Tls {
    cluster: TempCluster,
    ca: PathBuf,
    other_ca: PathBuf,
    _dir: tempfile::TempDir,
}

fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let ca = TestCa::generate("lifeline test CA").expect("CA");
        let other = TestCa::generate("someone else's CA").expect("other CA");
        let server = ca.issue_server(&["localhost"]).expect("server certificate");
        let cluster = TempCluster::start_with(Options {
            tls: Some(server),
            ..Options::default()
        })
        .expect("start a TLS cluster");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_path = dir.path().join("ca.pem");
        let other_path = dir.path().join("other-ca.pem");
        std::fs::write(&ca_path, ca.cert_pem()).expect("write CA");
        std::fs::write(&other_path, other.cert_pem()).expect("write other CA");
        Tls {
            cluster,
            ca: ca_path,
            other_ca: other_path,
            _dir: dir,
        }
    })
}

/// A URL of a fresh database, reached through `host`, with `params` appended.
fn url(host: &str, params: &str) -> String {
    let t = tls();
    let name = t.cluster.unique_db_name("tls");
    t.cluster.create_database(&name).expect("create database");
    format!("{}?{params}", t.cluster.url_via(host, &name))
}

/// Connects once; `Ok(ssl)` with what the server says about the session's encryption, or
/// the error with all its causes.
async fn connect(url: &str) -> Result<bool, String> {
    let target = PgTarget::parse(url).map_err(|e| e.to_string())?;
    let (client, conn) = target.connect().await.map_err(|e| chain(&e))?;
    let driver = tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| chain(&e))?;
    drop(client);
    let _ = driver.await;
    Ok(row.get(0))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[tokio::test]
async fn verify_full_connects_to_the_named_host_encrypted() {
    let ca = tls().ca.display().to_string();
    let u = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert_eq!(connect(&u).await, Ok(true));
    // The store's pool honours the same URL (and migrates over it).
    let store = PostgisStore::connect(&u, 2).await.expect("store over TLS");
    store.ping().await.expect("ping");
    assert!(
        store.describe().contains("sslmode=verify-full"),
        "{}",
        store.describe()
    );
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_of_another_ca() {
    let other = tls().other_ca.display().to_string();
    let u = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    );
    let e = connect(&u).await.expect_err("another CA must be refused");
    assert!(e.contains("UnknownIssuer"), "{e}");
    assert!(PostgisStore::connect(&u, 1).await.is_err());
}

#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    // The certificate names only `localhost`; 127.0.0.1 is the same server by another name.
    let ca = tls().ca.display().to_string();
    let u = url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let e = connect(&u).await.expect_err("the name must be checked");
    assert!(e.contains("not valid for name"), "{e}");
}

#[tokio::test]
async fn verify_ca_accepts_that_host_but_not_another_ca() {
    let t = tls();
    let ca = t.ca.display().to_string();
    let u = url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    assert_eq!(
        PgTarget::parse(&u).map(|t| t.ssl_mode()).ok(),
        Some(SslMode::VerifyCa)
    );
    assert_eq!(connect(&u).await, Ok(true));
    let other = t.other_ca.display().to_string();
    let u = url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={other}"),
    );
    let e = connect(&u)
        .await
        .expect_err("verify-ca still checks the chain");
    assert!(e.contains("UnknownIssuer"), "{e}");
}

#[tokio::test]
async fn require_encrypts_without_a_ca() {
    let u = url("127.0.0.1", "sslmode=require");
    assert_eq!(connect(&u).await, Ok(true));
    // The default, prefer, takes the encryption the server offers.
    let u = url("127.0.0.1", "application_name=prefer_test");
    assert_eq!(connect(&u).await, Ok(true));
}

#[tokio::test]
async fn disable_is_refused_by_a_hostssl_only_server() {
    let u = url("127.0.0.1", "sslmode=disable");
    let e = connect(&u).await.expect_err("plain TCP must be refused");
    assert!(
        e.contains("pg_hba.conf") && e.contains("no encryption"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unknown_sslmode_is_a_clear_store_error() {
    let u = url("localhost", "sslmode=verify-everything");
    let e = PostgisStore::connect(&u, 1)
        .await
        .expect_err("unknown mode");
    assert!(
        e.to_string()
            .contains("unknown sslmode 'verify-everything'"),
        "{e}"
    );
}

#[tokio::test]
async fn unix_socket_connections_need_no_host_name() {
    // PostgreSQL has no TLS on unix sockets; the default (prefer) falls back to plain there.
    let t = tls();
    let name = t.cluster.unique_db_name("tls_unix");
    t.cluster.create_database(&name).expect("create database");
    let conninfo = format!(
        "host={} port={} user={} dbname={name}",
        t.cluster.dir().display(),
        t.cluster.port(),
        lifeline_pgcluster::SUPERUSER
    );
    assert_eq!(connect(&conninfo).await, Ok(false));
}
