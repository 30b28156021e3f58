//! The server over TLS to PostgreSQL: a throwaway cluster that accepts TCP connections only
//! over TLS (`hostssl`), with a server certificate for `localhost` from a CA made up for
//! this run. The store's pool and the change follower's LISTEN connection both connect
//! with `sslmode=verify-full`, and a change written through a second connection reaches the
//! server's index through the follower.

mod app;

use app::fixtures;
use lifeline::config::Config;
use lifeline::model::{Actor, Role};
use lifeline::store::postgis::tls::PgTarget;
use lifeline_pgcluster::{Options, TempCluster, TestCa};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_and_its_change_follower_connect_over_verified_tls() {
    let ca = TestCa::generate("lifeline test CA").expect("CA");
    let server = ca.issue_server(&["localhost"]).expect("server certificate");
    let cluster = TempCluster::start_with(Options {
        tls: Some(server),
        ..Options::default()
    })
    .expect("TLS cluster");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write CA");
    let name = cluster.unique_db_name("follower_tls");
    cluster.create_database(&name).expect("database");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        cluster.url_via("localhost", &name),
        ca_path.display()
    );

    let store = lifeline::store::open(&url, 4)
        .await
        .expect("store over TLS");
    let config = Config {
        store_url: url.clone(),
        anonymous_role: Some(Role::Analyst),
        ..Config::default()
    };
    let state = lifeline::AppState::with_store(store, config, app::test_clock())
        .await
        .expect("state");
    let (addr, stop, server) = app::serve(state).await;

    // An observer over TLS too: the follower's LISTEN connection shows up, encrypted.
    let (observer, conn) = PgTarget::parse(&url)
        .expect("url")
        .connect()
        .await
        .expect("observer connection");
    let driver = tokio::spawn(conn);
    let deadline = Instant::now() + Duration::from_secs(20);
    let listening = loop {
        let row = observer
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.application_name = 'lifeline-follower' AND a.query LIKE 'LISTEN%'",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        let (ssl, all): (i64, i64) = (row.get(0), row.get(1));
        if all > 0 || Instant::now() > deadline {
            break (ssl, all);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listening, (1, 1), "one LISTEN connection, over TLS");

    // A second instance's write (its own pool, over TLS) reaches this server's index.
    let other = lifeline::store::open(&url, 2).await.expect("second store");
    other
        .bulk_load(&fixtures::dataset(), &Actor::cli())
        .await
        .expect("write through the second connection");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = client
            .get(format!("http://{addr}/features/pipelines/2"))
            .send()
            .await
            .expect("request")
            .status();
        if s == StatusCode::OK || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        status,
        StatusCode::OK,
        "the change arrived through the follower"
    );

    let _ = stop.send(());
    let _ = server.await;
    drop(observer);
    let _ = driver.await;
}
