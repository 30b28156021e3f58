//! Test support shared by the HTTP integration tests: start the real server on port 0
//! against a real store (a fresh PostGIS database of the shared throwaway cluster, or a
//! GeoPackage in a temp dir), plus small realistic fixtures around Chongqing.
#![allow(dead_code)]

pub mod fixtures;
pub mod sse;

use lifeline::config::Config;
use lifeline::model::{Actor, Clock, Role};
use lifeline::store::{self, SharedStore};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgis,
    /// PostGIS on a Citus cluster (a coordinator and two workers), laid out by `migrate`.
    Citus,
    Gpkg,
}

/// A running server with its store and keys for each role.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: SharedStore,
    pub store_url: String,
    pub client: reqwest::Client,
    /// Keys by role name.
    pub keys: std::collections::HashMap<Role, String>,
    /// The server's clock (shared: setting or advancing it moves the server's time).
    pub clock: Clock,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The clock a test server runs on: `LIFELINE_TEST_CLOCK` when set (`scripts/test.sh`'s
/// guard run sets it two years ahead, proving no test depends on the day it runs), else the
/// system clock. Only tests read that variable; the service never does.
/// One per test process, so an absolute setting reads the same running time everywhere;
/// each server gets its own handle at the same offset ([`TestApp::clock`]).
pub fn test_clock() -> Clock {
    static CLOCK: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();
    CLOCK
        .get_or_init(|| {
            let setting = std::env::var("LIFELINE_TEST_CLOCK").unwrap_or_default();
            Clock::parse_setting(&setting).expect("LIFELINE_TEST_CLOCK")
        })
        .clone()
}

/// The current time of the test clock (what a fresh test server reads now).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    test_clock().now()
}

/// Today's date in China (UTC+8, the built-in calendar's zone) by the test clock: the date
/// the excavation check judges start dates against.
pub fn today() -> chrono::NaiveDate {
    let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    now().with_timezone(&cst).date_naive()
}

/// A fresh, empty, migrated store of the given backend and its URL.
pub async fn fresh_store(backend: Backend) -> (SharedStore, String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Postgis => {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let name = format!("http_{}_{n}", std::process::id());
            let url = lifeline_pgcluster::shared()
                .create_database(&name)
                .expect("create test database");
            let store = store::open(&url, 4).await.expect("open postgis store");
            (store, url, None)
        }
        Backend::Citus => {
            let url = lifeline_pgcluster::shared_citus()
                .fresh_database("http")
                .expect("create test database on the Citus cluster");
            let store = store::open(&url, 4).await.expect("open the Citus store");
            (store, url, None)
        }
        Backend::Gpkg => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("test.gpkg");
            let url = path.display().to_string();
            let store = store::open(&url, 1).await.expect("open gpkg store");
            (store, url, Some(dir))
        }
    }
}

impl TestApp {
    /// Starts a server over a fresh store loaded with `fixtures::dataset()`.
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, Some(Role::Viewer), true).await
    }

    /// Starts a server; `anonymous` is the anonymous role, `seed` loads the fixtures first.
    pub async fn start_with(backend: Backend, anonymous: Option<Role>, seed: bool) -> TestApp {
        Self::start_configured(backend, anonymous, seed, |_| {}).await
    }

    /// Like [`TestApp::start_with`], with `configure` changing the configuration last.
    pub async fn start_configured(
        backend: Backend,
        anonymous: Option<Role>,
        seed: bool,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let data = seed.then(fixtures::dataset);
        Self::start_loaded(backend, anonymous, data, configure).await
    }

    /// Starts a server over a fresh store loaded with `data` (if any).
    pub async fn start_loaded(
        backend: Backend,
        anonymous: Option<Role>,
        data: Option<lifeline::model::Dataset>,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let (store, store_url, dir) = fresh_store(backend).await;
        Self::start_over(store, store_url, dir, anonymous, data, configure).await
    }

    /// Starts a server over a given store (opened from `store_url`), loaded with `data`.
    pub async fn start_over(
        store: SharedStore,
        store_url: String,
        dir: Option<tempfile::TempDir>,
        anonymous: Option<Role>,
        data: Option<lifeline::model::Dataset>,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        if let Some(data) = data {
            store
                .bulk_load(&data, &Actor::cli())
                .await
                .expect("load the data set");
        }
        let mut keys = std::collections::HashMap::new();
        for role in Role::ALL {
            let key = lifeline::auth::generate_key();
            store
                .create_api_key(
                    &format!("test-{role}"),
                    *role,
                    &lifeline::auth::hash_key(&key),
                    &Actor::cli(),
                )
                .await
                .expect("create key");
            keys.insert(*role, key);
        }
        let mut config = Config {
            store_url: store_url.clone(),
            anonymous_role: anonymous,
            web_dir: std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web"),
            // Tests run many checks and writes with one key; the rate limits have their own
            // tests (tests/operations.rs), which set them through `configure`.
            http: lifeline::config::HttpLimits::default().without_rate_limits(),
            ..Config::default()
        };
        configure(&mut config);
        // Its own handle, so a test that moves its server's time moves no other server's.
        let clock = Clock::offset_by(test_clock().offset());
        let state = lifeline::AppState::with_store(store.clone(), config, clock.clone())
            .await
            .expect("build state");
        let (addr, tx, handle) = serve(state).await;
        TestApp {
            addr,
            store,
            store_url,
            client: reqwest::Client::new(),
            keys,
            clock,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request builder carrying the key of `role` (None: anonymous).
    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        role: Option<Role>,
    ) -> reqwest::RequestBuilder {
        let b = self.client.request(method, self.url(path));
        match role {
            Some(r) => b.bearer_auth(&self.keys[&r]),
            None => b,
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

/// Serves `state` on a free port of the loopback: its address, the sender that stops it
/// gracefully, and the server's task.
pub async fn serve(
    state: lifeline::AppState,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        lifeline::run(listener, state, async {
            let _ = rx.await;
        })
        .await
        .expect("server");
    });
    (addr, tx, handle)
}

/// Instantiates an async test body `fn(Backend)` once per listed engine, as
/// `mod $name { fn postgis, … }`: the shared body of [`every_backend!`] and
/// [`both_backends!`].
#[macro_export]
macro_rules! test_on_backends {
    ($name:ident: $($test:ident => $backend:ident),+) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$name(super::app::Backend::$backend).await
                }
            )+
        }
    };
}

/// Instantiates an async test body `fn(Backend)` once per store engine: PostGIS, Citus
/// and GeoPackage.
#[macro_export]
macro_rules! every_backend {
    ($name:ident) => {
        $crate::test_on_backends!($name: postgis => Postgis, citus => Citus, gpkg => Gpkg);
    };
}

/// Like [`every_backend!`] for PostGIS and GeoPackage only: for the tests whose subject is
/// not the store (the browser test, the server's crash safety, the audit log, which stays a
/// plain table on a Citus coordinator), where a third engine adds minutes and no coverage.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        $crate::test_on_backends!($name: postgis => Postgis, gpkg => Gpkg);
    };
}

/// The shared real data (`../shared/data` beside the checkout): `LIFELINE_SHARED_DATA` if
/// set, else `../shared/data` next to the workspace, else `/work/shared/data` (where a
/// checkout elsewhere, e.g. a CI clone, finds it on this workplace's machines).
#[allow(dead_code)]
pub fn shared_data_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("LIFELINE_SHARED_DATA").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")),
        Some(PathBuf::from("/work/shared/data")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("real").is_dir())
        .unwrap_or_else(|| {
            panic!("the shared real data (../shared/data) is missing; set LIFELINE_SHARED_DATA")
        })
}
