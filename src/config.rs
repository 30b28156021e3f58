//! Service configuration: command-line flags, then environment variables, then an optional
//! TOML file, then defaults — in that order of precedence. Flags and variables are
//! declared together (clap's `env`), so a flag always wins over its variable.

use crate::auth::oidc::{ClaimPath, JwksSource};
use crate::model::history::RetentionPolicy;
use crate::model::Role;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Settings shared by every subcommand that touches a store.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Optional TOML config file (see `lifeline.example.toml`).
    #[arg(long, env = "LIFELINE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// PostGIS connection URL (`postgres://user:pass@host/db`). When unset, the embedded
    /// GeoPackage store is used.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Path of the GeoPackage file of the embedded store.
    #[arg(long, env = "LIFELINE_GPKG", global = true)]
    pub gpkg: Option<PathBuf>,
}

/// Settings of `lifeline serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LIFELINE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Role granted to requests without an API key: a role name, or `none` to require keys.
    #[arg(long, env = "LIFELINE_ANONYMOUS_ROLE")]
    pub anonymous_role: Option<String>,
    /// Projected CRS for distances (`auto`, or e.g. `EPSG:4545`).
    #[arg(long, env = "LIFELINE_METRIC_CRS")]
    pub metric_crs: Option<String>,
    /// Directory of the web client.
    #[arg(long, env = "LIFELINE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Optional raster basemap under the web client's layers: a tile URL template with
    /// {z}, {x} and {y} (`[web] basemap_url` in the file).
    #[arg(long, env = "LIFELINE_BASEMAP_URL")]
    pub basemap_url: Option<String>,
    /// Attribution shown for the basemap.
    #[arg(long, env = "LIFELINE_BASEMAP_ATTRIBUTION")]
    pub basemap_attribution: Option<String>,
    /// The basemap's datum: `cgcs2000` (or `wgs84`, the default) or `gcj02` (Chinese
    /// commercial basemaps; the client then asks for GCJ-02 tiles and offsets its GeoJSON).
    #[arg(long, env = "LIFELINE_BASEMAP_DATUM")]
    pub basemap_datum: Option<String>,
    /// Single sign-on: the OpenID Connect issuer (the tokens' `iss`); setting it turns
    /// single sign-on on (`[oidc] issuer` in the file).
    #[arg(long, env = "LIFELINE_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Single sign-on: the audience tokens must name (`aud`), e.g. the client id.
    #[arg(long, env = "LIFELINE_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Single sign-on: URL of the provider's JWKS (https).
    #[arg(long, env = "LIFELINE_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// Single sign-on: a file holding the provider's JWKS, instead of the URL.
    #[arg(long, env = "LIFELINE_OIDC_JWKS_FILE")]
    pub oidc_jwks_file: Option<PathBuf>,
    /// Single sign-on: the claim carrying roles, a dotted path (default
    /// `realm_access.roles`, Keycloak's realm roles).
    #[arg(long, env = "LIFELINE_OIDC_ROLES_CLAIM")]
    pub oidc_roles_claim: Option<String>,
    /// Single sign-on: claim values to Lifeline roles, `value=role,value=role`
    /// (e.g. `gis-admins=admin,gis-ops=operator`); replaces the file's `[oidc.role_map]`.
    #[arg(long, env = "LIFELINE_OIDC_ROLE_MAP")]
    pub oidc_role_map: Option<String>,
}

/// `[oidc]` of the file: single sign-on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOidc {
    issuer: Option<String>,
    audience: Option<String>,
    jwks_url: Option<String>,
    jwks_file: Option<PathBuf>,
    roles_claim: Option<String>,
    role_map: Option<BTreeMap<String, String>>,
    leeway_secs: Option<u64>,
    jwks_refresh_min_secs: Option<u64>,
}

/// Single sign-on with an OpenID Connect provider (see [`crate::auth::oidc`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OidcConfig {
    /// The tokens' `iss`, exactly.
    pub issuer: String,
    /// What the tokens' `aud` must contain.
    pub audience: String,
    pub jwks: JwksSource,
    /// The claim holding the caller's roles (or groups).
    pub roles_claim: ClaimPath,
    /// Claim value to Lifeline role; the highest mapped role of a token wins.
    pub role_map: BTreeMap<String, Role>,
    /// Clock skew forgiven on `exp` and `nbf`.
    pub leeway: Duration,
    /// The JWKS is read again for an unknown `kid` at most this often.
    pub jwks_refresh_min: Duration,
}

impl OidcConfig {
    /// Default of [`OidcConfig::roles_claim`]: Keycloak's realm roles.
    pub const DEFAULT_ROLES_CLAIM: &'static str = "realm_access.roles";

    fn resolve(serve: &ServeArgs, file: FileOidc) -> Result<Option<OidcConfig>, ConfigError> {
        let Some(issuer) = serve.oidc_issuer.clone().or(file.issuer) else {
            return Ok(None);
        };
        let invalid = |key: &'static str, message: String| ConfigError::Invalid { key, message };
        let audience = serve
            .oidc_audience
            .clone()
            .or(file.audience)
            .ok_or_else(|| invalid("oidc audience", "required with an issuer".into()))?;
        // The source is one setting: flags and variables replace the file's either way.
        let jwks = match (&serve.oidc_jwks_url, &serve.oidc_jwks_file) {
            (None, None) => (file.jwks_url, file.jwks_file),
            (url, path) => (url.clone(), path.clone()),
        };
        let jwks = match jwks {
            (Some(url), None) => JwksSource::url(&url),
            (None, Some(path)) => Ok(JwksSource::File(path)),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "oidc jwks",
                    "give jwks_url or jwks_file, not both".into(),
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "oidc jwks",
                    "jwks_url or jwks_file is required".into(),
                ))
            }
        }
        .map_err(|e| invalid("oidc jwks_url", e.to_string()))?;
        let roles_claim = serve
            .oidc_roles_claim
            .clone()
            .or(file.roles_claim)
            .unwrap_or_else(|| Self::DEFAULT_ROLES_CLAIM.into())
            .parse::<ClaimPath>()
            .map_err(|e| invalid("oidc roles_claim", e.to_string()))?;
        let pairs: Vec<(String, String)> = match &serve.oidc_role_map {
            Some(flag) => flag
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.rsplit_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| invalid("oidc role_map", format!("'{p}': use value=role")))
                })
                .collect::<Result<_, _>>()?,
            None => file.role_map.unwrap_or_default().into_iter().collect(),
        };
        let role_map = pairs
            .into_iter()
            .map(|(k, v)| {
                v.parse::<Role>()
                    .map(|r| (k.clone(), r))
                    .map_err(|e| invalid("oidc role_map", format!("'{k}': {e}")))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        if role_map.is_empty() {
            return Err(invalid(
                "oidc role_map",
                "map at least one claim value to a role, or no token gets any".into(),
            ));
        }
        Ok(Some(OidcConfig {
            issuer,
            audience,
            jwks,
            roles_claim,
            role_map,
            leeway: Duration::from_secs(file.leeway_secs.unwrap_or(60)),
            jwks_refresh_min: Duration::from_secs(file.jwks_refresh_min_secs.unwrap_or(30)),
        }))
    }
}

/// `[web]` of the file: the optional raster basemap of the web client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWeb {
    basemap_url: Option<String>,
    basemap_attribution: Option<String>,
    basemap_datum: Option<String>,
    basemap_tile_size: Option<u16>,
    basemap_max_zoom: Option<u8>,
}

/// A raster basemap the web client draws under the service's layers (`GET /client-config`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Basemap {
    /// Tile URL template with `{z}`, `{x}`, `{y}`.
    pub url: String,
    pub attribution: String,
    /// The datum of the basemap's imagery; our layers are drawn in it.
    pub datum: crate::model::datum::Datum,
    /// Tile size in pixels (256 or 512).
    pub tile_size: u16,
    /// Highest zoom the basemap has tiles for (MapLibre over-zooms beyond).
    pub max_zoom: u8,
}

impl Basemap {
    fn resolve(serve: &ServeArgs, file: FileWeb) -> Result<Option<Basemap>, ConfigError> {
        let Some(url) = serve.basemap_url.clone().or(file.basemap_url) else {
            return Ok(None);
        };
        let url = url.trim().to_string();
        let invalid = |message: String| ConfigError::Invalid {
            key: "basemap_url",
            message,
        };
        if !["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p)) {
            return Err(invalid(format!(
                "'{url}' is not a tile URL template: it needs {{z}}, {{x}} and {{y}}"
            )));
        }
        if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with('/')) {
            return Err(invalid(format!(
                "'{url}' must start with http://, https:// or / (a path on this service)"
            )));
        }
        let datum = match serve.basemap_datum.clone().or(file.basemap_datum) {
            Some(d) => {
                d.parse()
                    .map_err(|e: crate::model::datum::DatumError| ConfigError::Invalid {
                        key: "basemap_datum",
                        message: e.to_string(),
                    })?
            }
            None => crate::model::datum::Datum::Cgcs2000,
        };
        let tile_size = file.basemap_tile_size.unwrap_or(256);
        if tile_size != 256 && tile_size != 512 {
            return Err(ConfigError::Invalid {
                key: "basemap_tile_size",
                message: format!("{tile_size}; must be 256 or 512"),
            });
        }
        let max_zoom = file.basemap_max_zoom.unwrap_or(18);
        if max_zoom > 22 {
            return Err(ConfigError::Invalid {
                key: "basemap_max_zoom",
                message: format!("{max_zoom}; must be at most 22"),
            });
        }
        Ok(Some(Basemap {
            url,
            attribution: serve
                .basemap_attribution
                .clone()
                .or(file.basemap_attribution)
                .unwrap_or_default(),
            datum,
            tile_size,
            max_zoom,
        }))
    }
}

/// `[http]` of the file: connection and request limits (docs/operations.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    header_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_uri_bytes: Option<usize>,
    max_header_bytes: Option<usize>,
    writes_per_minute: Option<u32>,
    checks_per_minute: Option<u32>,
    ingest_per_minute: Option<u32>,
}

/// Connection and request limits of the HTTP server.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// A connection must send a request's whole head within this time (also while idle
    /// between requests), or it is closed.
    pub header_timeout: std::time::Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Longest request target (path and query) answered; longer gets a JSON 414.
    pub max_uri_bytes: usize,
    /// Largest request head (all header names and values); larger gets a JSON 431.
    pub max_header_bytes: usize,
    /// Per-key requests per minute that change data (`0`: unlimited).
    pub writes_per_minute: u32,
    /// Per-key excavation checks per minute (`0`: unlimited).
    pub checks_per_minute: u32,
    /// Per-key reading batches per minute (`0`: unlimited).
    pub ingest_per_minute: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: std::time::Duration::from_secs(10),
            max_connections: 10_000,
            max_uri_bytes: 16 * 1024,
            max_header_bytes: 32 * 1024,
            writes_per_minute: 600,
            checks_per_minute: 120,
            ingest_per_minute: 12_000,
        }
    }
}

impl HttpLimits {
    /// These limits without the per-key rate limits: for load runs and tests that measure
    /// or exercise something else at volume.
    pub fn without_rate_limits(self) -> HttpLimits {
        HttpLimits {
            writes_per_minute: 0,
            checks_per_minute: 0,
            ingest_per_minute: 0,
            ..self
        }
    }

    fn resolve(file: FileHttp) -> Result<HttpLimits, ConfigError> {
        let d = HttpLimits::default();
        let positive = |key: &'static str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(ConfigError::Invalid {
                key,
                message: "must be at least 1".into(),
            }),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let timeout = positive(
            "http.header_timeout_secs",
            file.header_timeout_secs.map(|s| s as usize),
            d.header_timeout.as_secs() as usize,
        )?;
        Ok(HttpLimits {
            header_timeout: std::time::Duration::from_secs(timeout as u64),
            max_connections: positive(
                "http.max_connections",
                file.max_connections,
                d.max_connections,
            )?,
            max_uri_bytes: positive("http.max_uri_bytes", file.max_uri_bytes, d.max_uri_bytes)?,
            max_header_bytes: positive(
                "http.max_header_bytes",
                file.max_header_bytes,
                d.max_header_bytes,
            )?,
            writes_per_minute: file.writes_per_minute.unwrap_or(d.writes_per_minute),
            checks_per_minute: file.checks_per_minute.unwrap_or(d.checks_per_minute),
            ingest_per_minute: file.ingest_per_minute.unwrap_or(d.ingest_per_minute),
        })
    }
}

/// `[readings]` of the file: the readings history (issue 16, docs/risk.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReadings {
    /// Days raw readings are kept; the hourly and daily rollups are kept for good.
    retention_days: Option<u32>,
}

/// The file form: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    gpkg: Option<PathBuf>,
    listen: Option<SocketAddr>,
    anonymous_role: Option<String>,
    metric_crs: Option<String>,
    web_dir: Option<PathBuf>,
    pool_size: Option<usize>,
    max_body_bytes: Option<usize>,
    max_bulk_body_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    excavation_config: Option<PathBuf>,
    web: Option<FileWeb>,
    http: Option<FileHttp>,
    oidc: Option<FileOidc>,
    readings: Option<FileReadings>,
    audit: Option<FileAudit>,
    cors: Option<FileCors>,
    quotas: Option<BTreeMap<String, FileQuota>>,
}

/// One role's `[quotas.<role>]` in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuota {
    features_per_day: Option<u64>,
    area_km2_per_day: Option<f64>,
}

/// One role's daily quota of full-attribute reads and exports, per key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    /// Features returned per day.
    pub features: Option<u64>,
    /// Area read per day, km² (the boxes of the reads, summed).
    pub area_km2: Option<f64>,
}

/// The quotas by role; a role without one has none.
pub type QuotaConfig = BTreeMap<Role, Quota>;

fn resolve_quotas(file: BTreeMap<String, FileQuota>) -> Result<QuotaConfig, ConfigError> {
    file.into_iter()
        .map(|(role, q)| {
            let role: Role = role.parse().map_err(|e| ConfigError::Invalid {
                key: "quotas",
                message: format!("{e}"),
            })?;
            if q.area_km2_per_day
                .is_some_and(|a| !a.is_finite() || a < 0.0)
            {
                return Err(ConfigError::Invalid {
                    key: "quotas",
                    message: format!("area_km2_per_day of {role} must be a number >= 0"),
                });
            }
            Ok((
                role,
                Quota {
                    features: q.features_per_day,
                    area_km2: q.area_km2_per_day,
                },
            ))
        })
        .collect()
}

/// `[audit]` in the file (issue 21).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    tile_flush_secs: Option<u64>,
    retention_days: Option<u32>,
    segment_entries: Option<u32>,
}

/// The access audit's settings (docs/operations.md).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    /// How often the tile read groups are written (and at shutdown).
    pub tile_flush: std::time::Duration,
    /// Entries older than this many days may be cut (`lifeline audit cut`); none: kept.
    pub retention_days: Option<u32>,
    /// Entries per chained segment: a cut removes whole segments only.
    pub segment_entries: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            tile_flush: std::time::Duration::from_secs(300),
            retention_days: None,
            segment_entries: 10_000,
        }
    }
}

impl AuditConfig {
    fn resolve(file: FileAudit) -> Result<AuditConfig, ConfigError> {
        let d = AuditConfig::default();
        let nonzero = |key: &'static str, v: Option<u64>| match v {
            Some(0) => Err(ConfigError::Invalid {
                key,
                message: "must be at least 1".into(),
            }),
            other => Ok(other),
        };
        Ok(AuditConfig {
            tile_flush: nonzero("audit.tile_flush_secs", file.tile_flush_secs)?
                .map_or(d.tile_flush, std::time::Duration::from_secs),
            retention_days: nonzero("audit.retention_days", file.retention_days.map(u64::from))?
                .map(|n| n as u32),
            segment_entries: nonzero("audit.segment_entries", file.segment_entries.map(u64::from))?
                .map_or(d.segment_entries, |n| n as u32),
        })
    }
}

/// `[cors]` in the file (issue 21): allowed origins per route group.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCors {
    tiles: Option<Vec<String>>,
    read: Option<Vec<String>>,
    write: Option<Vec<String>>,
}

/// Which other origins a browser may call each group of routes from. Empty (the
/// default): same origin only, and no CORS header is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CorsConfig {
    /// Tiles, styles, TileJSON and tile metadata.
    pub tiles: Vec<axum::http::HeaderValue>,
    /// Every other GET (and the read-only POSTs: the check, traces).
    pub read: Vec<axum::http::HeaderValue>,
    /// Requests that change data.
    pub write: Vec<axum::http::HeaderValue>,
}

impl CorsConfig {
    fn resolve(file: FileCors) -> Result<CorsConfig, ConfigError> {
        fn origins(
            key: &'static str,
            v: Option<Vec<String>>,
        ) -> Result<Vec<axum::http::HeaderValue>, ConfigError> {
            v.unwrap_or_default()
                .into_iter()
                .map(|o| {
                    let ok = (o.starts_with("http://") || o.starts_with("https://"))
                        && !o.ends_with('/')
                        && o.len() <= 255
                        && o[o.find("//").map_or(0, |i| i + 2)..].chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                        });
                    if !ok {
                        return Err(ConfigError::Invalid {
                            key,
                            message: format!(
                                "'{o}' is not an origin (scheme://host[:port], no path, no '*')"
                            ),
                        });
                    }
                    axum::http::HeaderValue::from_str(&o).map_err(|e| ConfigError::Invalid {
                        key,
                        message: e.to_string(),
                    })
                })
                .collect()
        }
        Ok(CorsConfig {
            tiles: origins("cors.tiles", file.tiles)?,
            read: origins("cors.read", file.read)?,
            write: origins("cors.write", file.write)?,
        })
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` for PostGIS, otherwise the GeoPackage path.
    pub store_url: String,
    pub listen: SocketAddr,
    /// `None`: requests without a key are refused.
    pub anonymous_role: Option<Role>,
    /// `None`: choose from the data's extent at start-up.
    pub metric_crs: Option<String>,
    pub web_dir: PathBuf,
    pub pool_size: usize,
    /// Largest request body for single-record endpoints.
    pub max_body_bytes: usize,
    /// Largest request body for bulk loads.
    pub max_bulk_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// Excavation settings file (`data/excavation.toml` format); `None`: the built-in one.
    pub excavation_config: Option<PathBuf>,
    /// The web client's optional raster basemap; `None`: our own layers only.
    pub basemap: Option<Basemap>,
    /// Connection and request limits (`[http]`).
    pub http: HttpLimits,
    /// Single sign-on; `None`: API keys only.
    pub oidc: Option<OidcConfig>,
    /// How long raw readings are kept (`[readings] retention_days`, default 90 days).
    pub retention: RetentionPolicy,
    /// The access audit (issue 21).
    pub audit: AuditConfig,
    /// Cross-origin policy per route group (issue 21).
    pub cors: CorsConfig,
    /// Daily quotas of full-attribute reads per key, by role (issue 21).
    pub quotas: QuotaConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store_url: "data/lifeline.gpkg".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            anonymous_role: Some(Role::Viewer),
            metric_crs: None,
            web_dir: PathBuf::from("web"),
            pool_size: 16,
            max_body_bytes: 2 * 1024 * 1024,
            max_bulk_body_bytes: 256 * 1024 * 1024,
            request_timeout_secs: 60,
            excavation_config: None,
            basemap: None,
            http: HttpLimits::default(),
            oidc: None,
            retention: RetentionPolicy::default(),
            audit: AuditConfig::default(),
            cors: CorsConfig::default(),
            quotas: QuotaConfig::default(),
        }
    }
}

fn parse_anonymous(s: &str) -> Result<Option<Role>, ConfigError> {
    if s == "none" {
        return Ok(None);
    }
    s.parse::<Role>()
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            key: "anonymous_role",
            message: format!("{e}, or none"),
        })
}

impl Config {
    /// Resolves flags/env (already merged by clap) over the file over the defaults.
    pub fn resolve(store: &StoreArgs, serve: &ServeArgs) -> Result<Config, ConfigError> {
        let file = match &store.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let store_url = store
            .database_url
            .clone()
            .or_else(|| store.gpkg.as_ref().map(|p| p.display().to_string()))
            .or(file.database_url)
            .or_else(|| file.gpkg.map(|p| p.display().to_string()))
            .unwrap_or(d.store_url);
        let anonymous_role = match serve.anonymous_role.clone().or(file.anonymous_role) {
            Some(s) => parse_anonymous(&s)?,
            None => d.anonymous_role,
        };
        let metric_crs = serve
            .metric_crs
            .clone()
            .or(file.metric_crs)
            .filter(|s| s != "auto");
        let pool_size = file.pool_size.unwrap_or(d.pool_size);
        if pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "pool_size",
                message: "must be at least 1".into(),
            });
        }
        let basemap = Basemap::resolve(serve, file.web.unwrap_or_default())?;
        let oidc = OidcConfig::resolve(serve, file.oidc.unwrap_or_default())?;
        let retention = match file.readings.and_then(|r| r.retention_days) {
            Some(days) => RetentionPolicy::new(days).map_err(|e| ConfigError::Invalid {
                key: "readings.retention_days",
                message: e.to_string(),
            })?,
            None => d.retention,
        };
        Ok(Config {
            store_url,
            listen: serve.listen.or(file.listen).unwrap_or(d.listen),
            anonymous_role,
            metric_crs,
            web_dir: serve.web_dir.clone().or(file.web_dir).unwrap_or(d.web_dir),
            pool_size,
            max_body_bytes: file.max_body_bytes.unwrap_or(d.max_body_bytes),
            max_bulk_body_bytes: file.max_bulk_body_bytes.unwrap_or(d.max_bulk_body_bytes),
            request_timeout_secs: file.request_timeout_secs.unwrap_or(d.request_timeout_secs),
            excavation_config: file.excavation_config,
            basemap,
            http: HttpLimits::resolve(file.http.unwrap_or_default())?,
            oidc,
            retention,
            audit: AuditConfig::resolve(file.audit.unwrap_or_default())?,
            cors: CorsConfig::resolve(file.cors.unwrap_or_default())?,
            quotas: resolve_quotas(file.quotas.unwrap_or_default())?,
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_over_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "gpkg = 'from-file.gpkg'\nanonymous_role = 'none'\nlisten = '0.0.0.0:9000'\n",
        )
        .unwrap();
        let store = StoreArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = Config::resolve(&store, &ServeArgs::default()).unwrap();
        assert_eq!(c.store_url, "from-file.gpkg");
        assert_eq!(c.anonymous_role, None);
        assert_eq!(c.listen.port(), 9000);
        let serve = ServeArgs {
            anonymous_role: Some("analyst".into()),
            ..Default::default()
        };
        let store = StoreArgs {
            config: Some(path),
            database_url: Some("postgres://x@y/z".into()),
            gpkg: None,
        };
        let c = Config::resolve(&store, &serve).unwrap();
        assert_eq!(c.store_url, "postgres://x@y/z");
        assert_eq!(c.anonymous_role, Some(Role::Analyst));
    }

    #[test]
    fn bad_file_and_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "colour = 'red'\n").unwrap();
        let store = StoreArgs {
            config: Some(path),
            ..Default::default()
        };
        let e = Config::resolve(&store, &ServeArgs::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        let serve = ServeArgs {
            anonymous_role: Some("king".into()),
            ..Default::default()
        };
        let e = Config::resolve(&StoreArgs::default(), &serve)
            .unwrap_err()
            .to_string();
        assert!(e.contains("king"), "{e}");
    }

    #[test]
    fn readings_retention_from_file_with_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let store = StoreArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let d = Config::resolve(&StoreArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(d.retention.raw_days(), RetentionPolicy::DEFAULT_RAW_DAYS);
        std::fs::write(&path, "[readings]\nretention_days = 14\n").unwrap();
        let c = Config::resolve(&store, &ServeArgs::default()).unwrap();
        assert_eq!(c.retention.raw_days(), 14);
        for (text, key) in [
            (
                "[readings]\nretention_days = 0\n",
                "readings.retention_days",
            ),
            ("[readings]\nkeep = 3\n", "keep"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Config::resolve(&store, &ServeArgs::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn oidc_from_file_and_flags_with_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[oidc]\nissuer = 'https://sso.example.cn/realms/cq'\naudience = 'lifeline'\n\
             jwks_url = 'https://sso.example.cn/realms/cq/protocol/openid-connect/certs'\n\
             [oidc.role_map]\ngis-ops = 'operator'\ngis-admins = 'admin'\n",
        )
        .unwrap();
        let store = StoreArgs {
            config: Some(path),
            ..Default::default()
        };
        let none = Config::resolve(&StoreArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(none.oidc, None);
        let o = Config::resolve(&store, &ServeArgs::default())
            .unwrap()
            .oidc
            .unwrap();
        assert_eq!(o.audience, "lifeline");
        assert_eq!(o.roles_claim.to_string(), "realm_access.roles");
        assert_eq!(o.role_map.get("gis-ops"), Some(&Role::Operator));
        assert!(matches!(o.jwks, JwksSource::Url(_)));
        // Flags (variables) win: the file's URL gives way to a file source.
        let serve = ServeArgs {
            oidc_jwks_file: Some("jwks.json".into()),
            oidc_role_map: Some("a=viewer, b=analyst".into()),
            oidc_roles_claim: Some("roles".into()),
            ..Default::default()
        };
        let o = Config::resolve(&store, &serve).unwrap().oidc.unwrap();
        assert_eq!(o.jwks, JwksSource::File("jwks.json".into()));
        assert_eq!(o.role_map.len(), 2);
        assert_eq!(o.role_map.get("b"), Some(&Role::Analyst));
        assert_eq!(o.roles_claim.to_string(), "roles");
        for (serve, key) in [
            (
                ServeArgs {
                    oidc_role_map: Some("a=king".into()),
                    ..Default::default()
                },
                "king",
            ),
            (
                ServeArgs {
                    oidc_jwks_url: Some("http://sso.example.cn/certs".into()),
                    ..Default::default()
                },
                "https",
            ),
            (
                ServeArgs {
                    oidc_issuer: Some("https://other".into()),
                    oidc_audience: None,
                    oidc_jwks_file: Some("x".into()),
                    oidc_role_map: Some("a=admin".into()),
                    ..Default::default()
                },
                "",
            ),
        ] {
            let e = Config::resolve(&store, &serve);
            if key.is_empty() {
                // The file's audience still applies under a flag's issuer.
                assert_eq!(e.unwrap().oidc.unwrap().issuer, "https://other");
            } else {
                let e = e.unwrap_err().to_string();
                assert!(e.contains(key), "{e}");
            }
        }
        let serve = ServeArgs {
            oidc_issuer: Some("https://x".into()),
            ..Default::default()
        };
        let e = Config::resolve(&StoreArgs::default(), &serve)
            .unwrap_err()
            .to_string();
        assert!(e.contains("audience"), "{e}");
    }

    #[test]
    fn basemap_from_file_and_env_with_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[web]\nbasemap_url = 'https://tiles.example/{z}/{x}/{y}.png'\nbasemap_attribution = '© Example'\nbasemap_datum = 'gcj02'\n",
        )
        .unwrap();
        let store = StoreArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let none = Config::resolve(&StoreArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!(none.basemap, None);
        let b = Config::resolve(&store, &ServeArgs::default())
            .unwrap()
            .basemap
            .unwrap();
        assert_eq!(b.url, "https://tiles.example/{z}/{x}/{y}.png");
        assert_eq!(b.attribution, "© Example");
        assert_eq!(b.datum, crate::model::datum::Datum::Gcj02);
        assert_eq!((b.tile_size, b.max_zoom), (256, 18));
        // The variables (flags) win over the file.
        let serve = ServeArgs {
            basemap_datum: Some("wgs84".into()),
            ..Default::default()
        };
        let b = Config::resolve(&store, &serve).unwrap().basemap.unwrap();
        assert_eq!(b.datum, crate::model::datum::Datum::Cgcs2000);
        for (url, datum, key) in [
            ("https://x/{z}/{x}.png", None, "basemap_url"),
            ("ftp://x/{z}/{x}/{y}.png", None, "basemap_url"),
            ("/basemap/{z}/{x}/{y}.png", Some("bd09"), "bd09"),
        ] {
            let serve = ServeArgs {
                basemap_url: Some(url.into()),
                basemap_datum: datum.map(str::to_string),
                ..Default::default()
            };
            let e = Config::resolve(&StoreArgs::default(), &serve)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
