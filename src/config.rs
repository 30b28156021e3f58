//! Service configuration: command-line flags, then environment variables, then an optional
//! TOML file, then defaults — in that order of precedence. Flags and variables are
//! declared together (clap's `env`), so a flag always wins over its variable.

use crate::model::Role;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
