//! The service's state: [`AppState::open`] opens the store, applies migrations and builds
//! the index from it. The one write path (store first, then index) is
//! [`crate::records::write`].

use crate::auth::Authenticator;
use crate::config::Config;
use crate::index::SpatialIndex;
use crate::model::crs::MetricCrs;
use crate::model::{Catalog, Clock};
use crate::store::{self, SharedStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] store::StoreError),
    #[error("bad CRS setting: {0}")]
    Crs(#[from] crate::model::crs::CrsError),
    #[error("cannot build the index: {0}")]
    Index(String),
    #[error("excavation rules or settings: {0}")]
    Excavation(String),
    #[error("single sign-on: {0}")]
    Oidc(#[from] crate::auth::oidc::OidcError),
}

/// Everything a handler needs: cheap clones of shared handles.
#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub index: Arc<SpatialIndex>,
    pub auth: Arc<Authenticator>,
    pub config: Arc<Config>,
    pub catalog: &'static Catalog,
    /// The service's one source of the current time (the system's in production; tests
    /// set it). Every rule that depends on "now" reads it.
    pub clock: Clock,
    /// Serialises writes so the index applies them in the store's commit order (see
    /// [`crate::records::write`]).
    writes: Arc<tokio::sync::Mutex<()>>,
    /// How long the start-up load took, for `/ready`.
    pub load_time: Duration,
    /// Vector tiles cut from the index, with their cache (invalidated by
    /// [`crate::records::write`]).
    pub tiles: crate::tileserver::TileService,
    /// Excavation-check rules and settings (issue 4), validated at start-up.
    pub excavation: Arc<crate::excavation::Excavation>,
    /// The risk one map (issue 5): readings, alarms, live levels and the event bus.
    pub risk: Arc<crate::risk::RiskEngine>,
    /// Per-key rate limits of writes and checks ([`crate::limits`]).
    pub rate_limits: Arc<crate::limits::RateLimits>,
    /// The change follower's progress (`/metrics`).
    pub follower: Arc<crate::sync::FollowerProgress>,
    /// The utility networks as traces see them, rebuilt when the index changes (issue 15);
    /// the same as the excavation check's, for its "if struck".
    pub networks: Arc<crate::trace::service::Networks>,
    /// The read audit (issue 21): reads that return more than a viewer may see.
    pub audit: Arc<crate::audit::ReadAudit>,
}

impl AppState {
    /// Opens the configured store, migrates it, and loads the index from it; the clock is
    /// the system's.
    pub async fn open(config: Config) -> Result<AppState, StartError> {
        let store = store::open(&config.store_url, config.pool_size).await?;
        Self::with_store(store, config, Clock::system()).await
    }

    /// Builds the state around an already opened store, with `clock` as its time.
    pub async fn with_store(
        store: SharedStore,
        config: Config,
        clock: Clock,
    ) -> Result<AppState, StartError> {
        let started = Instant::now();
        let data = store.load_all().await?;
        let crs = match &config.metric_crs {
            Some(code) => MetricCrs::new(code)?,
            None => {
                let bbox = data
                    .grid_cells
                    .iter()
                    .filter_map(|c| crate::model::Bbox::of(&c.geometry))
                    .chain(
                        data.pipelines
                            .iter()
                            .filter_map(|p| crate::model::Bbox::of(&p.geometry)),
                    )
                    .reduce(|a, b| a.union(&b));
                // An empty store measures in the zone of the first city, Chongqing.
                let (lon, lat) = bbox.map(|b| b.center()).unwrap_or((106.55, 29.56));
                MetricCrs::auto(lon, lat)
            }
        };
        let index = Arc::new(crate::tileserver::render::with_index_min_zoom(
            SpatialIndex::new(crs),
        ));
        let idx = index.clone();
        tokio::task::spawn_blocking(move || idx.load(data))
            .await
            .map_err(|e| StartError::Index(e.to_string()))??;
        let load_time = started.elapsed();
        tracing::info!(
            store = %store.describe(),
            crs = index.crs().code(),
            ms = load_time.as_millis() as u64,
            counts = ?index.stats().iter().map(|s| (s.layer.as_str(), s.count)).collect::<Vec<_>>(),
            "index loaded"
        );
        let mut auth = Authenticator::new(store.clone(), config.anonymous_role);
        if let Some(oidc) = &config.oidc {
            auth =
                auth.with_oidc(crate::auth::oidc::OidcVerifier::start(oidc, clock.clone()).await?);
        }
        let auth = Arc::new(auth);
        let tiles = crate::tileserver::TileService::new(index.clone());
        let excavation = Arc::new(
            crate::excavation::Excavation::from_path(config.excavation_config.as_deref())
                .map_err(|e| StartError::Excavation(e.to_string()))?,
        );
        let risk = crate::risk::RiskEngine::open_with_retention(
            store.clone(),
            index.clone(),
            clock.clone(),
            config.retention,
        )
        .await?;
        let rate_limits = Arc::new(crate::limits::RateLimits::new(&config.http));
        let networks = excavation.networks.clone();
        let (store_audit, clock_audit): (Arc<dyn crate::store::AuditLog>, _) =
            (store.clone(), clock.clone());
        let quotas = config.quotas.clone();
        Ok(AppState {
            store,
            index,
            auth,
            config: Arc::new(config),
            catalog: Catalog::builtin(),
            clock,
            writes: Arc::new(tokio::sync::Mutex::new(())),
            load_time,
            tiles,
            excavation,
            risk,
            rate_limits,
            follower: Arc::default(),
            networks,
            audit: Arc::new(crate::audit::ReadAudit::new(
                store_audit,
                clock_audit,
                quotas,
            )),
        })
    }

    /// The write lock: [`crate::records::write`] holds it around a commit and its index
    /// update; the change follower takes it around reading a record from the store and
    /// applying it, so a local write cannot land between the two (the follower would then
    /// put the older state back into the index).
    pub(crate) async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.lock().await
    }
}
