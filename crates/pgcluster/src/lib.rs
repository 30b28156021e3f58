//! A throwaway PostgreSQL + PostGIS cluster for tests and benchmarks.
//!
//! [`TempCluster::start`] runs `initdb` into a fresh directory under the system temp dir,
//! starts the server on a free TCP port of 127.0.0.1 (unix socket in the same directory)
//! with durability switched off (`fsync`, `synchronous_commit`, `full_page_writes`: a test
//! database is worthless after a crash anyway), and prepares a template database
//! `lifeline_template` holding the PostGIS extension. [`TempCluster::create_database`] then
//! clones that template in about a tenth of a second, so every test gets its own empty
//! database without paying for `CREATE EXTENSION postgis` each time.
//!
//! PostgreSQL refuses to run as root, so when the current user is root every server binary
//! (`initdb`, `pg_ctl`) runs as the `postgres` system user through `runuser`, and the
//! directory is handed to that user. Client tools (`createdb`, `psql`) connect through the
//! unix socket with trust authentication; TCP connections from 127.0.0.1 use the superuser
//! [`SUPERUSER`] with a random password, which [`TempCluster::url`] puts in the URL.
//!
//! [`TempCluster::start_with`] can start the server with TLS ([`Options::tls`]): it writes
//! the given certificate and key into the data directory, sets `ssl=on`, and replaces the
//! TCP lines of `pg_hba.conf` by `hostssl` lines, so a connection without TLS is refused
//! (the unix socket the client tools use stays trusted).
//!
//! The server binaries are looked up in `$LIFELINE_PG_BIN`, then the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's layout), then `$PATH`.
//!
//! Clean-up: dropping a [`TempCluster`] stops the server (`pg_ctl stop -m immediate`) and
//! removes the directory. Because a process may also die without running destructors (the
//! cluster of [`shared`] lives in a `static`, which is never dropped; a test binary may be
//! killed), each cluster also has a tiny watchdog shell process that does the same clean-up
//! as soon as the process that started the cluster is gone.
//!
//! ```no_run
//! use lifeline_pgcluster as pgcluster;
//! let cluster = pgcluster::shared();
//! let url = cluster.fresh_database("doc").expect("create database");
//! assert!(url.starts_with("postgres://"));
//! ```

mod citus;

pub use citus::{shared_citus, CitusCluster};

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the superuser role the cluster is created with.
pub const SUPERUSER: &str = "lifeline";

/// Name of the template database holding the PostGIS extension.
pub const TEMPLATE_DB: &str = "lifeline_template";

/// The OS user PostgreSQL runs as when the current user is root.
const SERVICE_USER: &str = "postgres";

/// Why a throwaway cluster could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error("PostgreSQL server binaries (initdb, pg_ctl) not found; set LIFELINE_PG_BIN or install postgresql")]
    NoBinaries,
    /// A command ran but failed; `detail` holds its output.
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    /// A database name that is not a plain lowercase identifier.
    #[error("invalid database name '{0}': use 1-63 characters of a-z, 0-9 and _, not starting with a digit")]
    BadName(String),
    /// A file-system or process-spawning error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Server-side TLS of a cluster: the PEM text of its certificate (chain) and private key.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The server certificate, optionally followed by intermediates (PEM).
    pub cert_pem: String,
    /// The certificate's private key (PEM, PKCS#8 or PKCS#1).
    pub key_pem: String,
}

/// A certificate authority made up for one test run, to issue a TLS cluster's server
/// certificate ([`TestCa::issue_server`]) and to be named as `sslrootcert` by clients.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA (ECDSA P-256) with common name `name`.
    pub fn generate(name: &str) -> Result<TestCa, ClusterError> {
        let key = rcgen::KeyPair::generate().map_err(cert_err)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).map_err(cert_err)?;
        Ok(TestCa { cert, key })
    }

    /// The CA certificate (PEM), for a client's `sslrootcert`.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for the DNS names `names` (also its common name, the first),
    /// signed by this CA, with its new key.
    pub fn issue_server(&self, names: &[&str]) -> Result<ServerTls, ClusterError> {
        let key = rcgen::KeyPair::generate().map_err(cert_err)?;
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(cert_err)?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(cert_err)?;
        Ok(ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn cert_err(e: rcgen::Error) -> ClusterError {
    ClusterError::Command {
        what: "generating a test certificate".into(),
        detail: e.to_string(),
    }
}

/// How [`TempCluster::start_with`] sets a cluster up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve TLS with this certificate and accept TCP connections only over TLS.
    pub tls: Option<ServerTls>,
    /// Extra server settings (`name`, `value`), passed as `-c name=value` on every start
    /// (e.g. `shared_preload_libraries=citus` for the nodes of a [`CitusCluster`]).
    pub settings: Vec<(String, String)>,
    /// Replaces `pg_hba.conf` with this text (ignored with [`Options::tls`]).
    pub hba: Option<String>,
}

/// A running throwaway PostgreSQL cluster; see the module docs.
#[derive(Debug)]
pub struct TempCluster {
    /// The directory holding the data directory, the socket, the log and the password file.
    dir: PathBuf,
    /// Where `initdb`, `pg_ctl`, `createdb` and `psql` live.
    bin: PathBuf,
    port: u16,
    password: String,
    /// Whether the server binaries run as [`SERVICE_USER`] (we are root).
    as_service_user: bool,
    /// The watchdog that cleans up if this process dies without dropping the cluster.
    watchdog: Option<Child>,
    /// Source of unique database names.
    counter: AtomicU64,
    /// Whether the server was set up with TLS (certificate files in the data directory).
    tls: bool,
    /// Extra `-c` settings of every start ([`Options::settings`]).
    settings: Vec<(String, String)>,
}

impl TempCluster {
    /// Creates, starts and prepares a new cluster (about 2–4 s: `initdb` and
    /// `CREATE EXTENSION postgis` dominate).
    pub fn start() -> Result<TempCluster, ClusterError> {
        Self::start_with(Options::default())
    }

    /// Like [`TempCluster::start`], set up as `options` say.
    pub fn start_with(options: Options) -> Result<TempCluster, ClusterError> {
        let bin = find_bin_dir().ok_or(ClusterError::NoBinaries)?;
        let as_service_user = current_uid()? == 0;
        let dir = make_private_dir(as_service_user)?;
        let password = format!("{:032x}", rand::random::<u128>());
        // From here on the directory exists: build the value first so that `Drop` removes it
        // whatever fails next.
        let mut cluster = TempCluster {
            dir,
            bin,
            port: 0,
            password,
            as_service_user,
            watchdog: None,
            counter: AtomicU64::new(0),
            tls: options.tls.is_some(),
            settings: options.settings.clone(),
        };
        cluster.init()?;
        if let Some(tls) = &options.tls {
            cluster.set_up_tls(tls)?;
        } else if let Some(hba) = &options.hba {
            std::fs::write(cluster.data_dir().join("pg_hba.conf"), hba)?;
        }
        cluster.watchdog = cluster.spawn_watchdog().ok();
        // The port is probed free and then released before the server binds it, so another
        // process may take it in between: retry with a new port a few times.
        let mut last = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        cluster.make_template()?;
        Ok(cluster)
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster (data directory, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A `postgres://` URL for database `db`, as the superuser with its password, over TCP.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Like [`TempCluster::url`] but naming the server `host` (e.g. `localhost`, for a
    /// certificate issued to that name); the server listens on 127.0.0.1 only.
    pub fn url_via(&self, host: &str, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@{host}:{}/{db}",
            self.password, self.port
        )
    }

    /// Runs one SQL command in database `db` through `psql` on the unix socket (as the
    /// superuser) and returns what it printed, unaligned and without headers. For test
    /// set-up and inspection; the SQL is the caller's own text, never user input.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, ClusterError> {
        let out = self
            .client_tool("psql")
            .args([
                "--dbname",
                db,
                "--no-psqlrc",
                "--quiet",
                "--tuples-only",
                "--no-align",
            ])
            .args(["--set", "ON_ERROR_STOP=1"])
            .args(["--command", sql])
            .output()?;
        check_output("psql", &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A database name no other call in this process has returned: `<prefix>_<pid>_<n>`.
    pub fn unique_db_name(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}_{}_{n}", std::process::id())
    }

    /// Creates database `name` as a copy of the PostGIS template and returns its URL.
    /// `name` must be a plain lowercase identifier (it is checked, not quoted).
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        check_db_name(name)?;
        // `createdb` quotes the name itself, so no SQL text is assembled here. FILE_COPY
        // copies the template's files instead of WAL-logging every block, which is several
        // times faster for a template of PostGIS's size.
        let out = self
            .client_tool("createdb")
            .args(["--template", TEMPLATE_DB, "--strategy", "file_copy", name])
            .output()?;
        check_output("createdb", &out)?;
        Ok(self.url(name))
    }

    /// Creates a database with a unique name starting with `prefix` and returns its URL.
    pub fn fresh_database(&self, prefix: &str) -> Result<String, ClusterError> {
        self.create_database(&self.unique_db_name(prefix))
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command for a server binary, run as the service user when we are root.
    fn server_tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        let mut cmd = if self.as_service_user {
            let mut c = Command::new("runuser");
            c.args(["-u", SERVICE_USER, "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// A command for a client tool, connecting through the unix socket as the superuser.
    pub(crate) fn client_tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.arg("--host")
            .arg(&self.dir)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--username", SUPERUSER])
            .stdin(Stdio::null());
        cmd
    }

    fn init(&self) -> Result<(), ClusterError> {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", self.password))?;
        hand_over(&pwfile, self.as_service_user)?;
        let out = self
            .server_tool("initdb")
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--username", SUPERUSER])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                // No fsync of the new files: the cluster is thrown away anyway.
                "--no-sync",
            ])
            .output()?;
        // The password is in the catalog now; the file is no longer needed.
        let _ = std::fs::remove_file(&pwfile);
        check_output("initdb", &out)
    }

    /// Writes the certificate and key (the key 0600 and owned by the server's user, or the
    /// server refuses it) and allows TCP connections over TLS only.
    fn set_up_tls(&self, tls: &ServerTls) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let cert = data.join("server.crt");
        let key = data.join("server.key");
        std::fs::write(&cert, &tls.cert_pem)?;
        hand_over(&cert, self.as_service_user)?;
        std::fs::write(&key, &tls.key_pem)?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        hand_over(&key, self.as_service_user)?;
        // Replaces initdb's `host` lines: with `hostssl` only, a plain TCP connection finds
        // no line and is refused.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostssl all all ::1/128 scram-sha-256\n",
        )?;
        Ok(())
    }

    pub(crate) fn start_server(&self) -> Result<(), ClusterError> {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 -c max_wal_size=4GB",
            self.port,
            self.dir.display()
        );
        if self.tls {
            // Relative paths are taken from the data directory.
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        for (name, value) in &self.settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let out = self
            .server_tool("pg_ctl")
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg("--log")
            .arg(self.dir.join("server.log"))
            .args(["--wait", "--timeout=60", "-o"])
            .arg(options)
            .arg("start")
            .output()?;
        check_output("pg_ctl start", &out).map_err(|e| self.with_log(e))
    }

    /// Appends the tail of the server log to an error, where the real reason usually is.
    fn with_log(&self, e: ClusterError) -> ClusterError {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        match e {
            ClusterError::Command { what, detail } => ClusterError::Command {
                what,
                detail: format!(
                    "{detail}\nserver log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ),
            },
            other => other,
        }
    }

    fn make_template(&self) -> Result<(), ClusterError> {
        let out = self.client_tool("createdb").arg(TEMPLATE_DB).output()?;
        check_output("createdb (template)", &out)?;
        // No connections to the template once it is ready: CREATE DATABASE refuses to copy a
        // database somebody is connected to.
        let out = self
            .client_tool("psql")
            .args(["--dbname", TEMPLATE_DB, "--no-psqlrc", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1"])
            .args(["--command", "CREATE EXTENSION postgis"])
            .output()?;
        check_output("CREATE EXTENSION postgis", &out)?;
        // From another database: a session cannot forbid connections to its own database.
        let out = self
            .client_tool("psql")
            .args(["--dbname", "postgres", "--no-psqlrc", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1"])
            .args([
                "--command",
                "ALTER DATABASE lifeline_template WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            ])
            .output()?;
        check_output("ALTER DATABASE lifeline_template", &out)
    }

    /// Starts the watchdog: a shell that waits for this process to end, then stops the
    /// server and removes the directory. Arguments are passed as positional parameters, not
    /// spliced into the script.
    fn spawn_watchdog(&self) -> Result<Child, ClusterError> {
        const SCRIPT: &str = r#"
trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ "$5" = 1 ]; then
  runuser -u postgres -- "$2" --pgdata "$3" --mode immediate stop >/dev/null 2>&1
else
  "$2" --pgdata "$3" --mode immediate stop >/dev/null 2>&1
fi
rm -rf "$4"
"#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("lifeline-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.bin.join("pg_ctl"))
            .arg(self.data_dir())
            .arg(&self.dir)
            .arg(if self.as_service_user { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(child)
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            // Ours to end: we started it, and we are about to do its job ourselves.
            let _ = w.kill();
            let _ = w.wait();
        }
        if self.port != 0 {
            let _ = self
                .server_tool("pg_ctl")
                .arg("--pgdata")
                .arg(self.data_dir())
                .args(["--mode", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster shared by every test of the current process, started on first use.
///
/// Every test binary gets one cluster; tests take databases from it with
/// [`TempCluster::fresh_database`] (or [`TempCluster::unique_db_name`] +
/// [`TempCluster::create_database`]). The cluster is never dropped; its watchdog stops it
/// when the process ends.
///
/// # Panics
/// If the cluster cannot be started (no PostgreSQL installed, no PostGIS, no `postgres`
/// user when running as root). This is test support: there is nothing to fall back to.
pub fn shared() -> &'static TempCluster {
    static SHARED: OnceLock<TempCluster> = OnceLock::new();
    SHARED.get_or_init(|| match TempCluster::start() {
        Ok(c) => c,
        Err(e) => panic!("cannot start the shared throwaway PostgreSQL cluster: {e}"),
    })
}

fn check_db_name(name: &str) -> Result<(), ClusterError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ClusterError::BadName(name.chars().take(80).collect()))
    }
}

fn check_output(what: &str, out: &Output) -> Result<(), ClusterError> {
    if out.status.success() {
        return Ok(());
    }
    Err(ClusterError::Command {
        what: what.to_string(),
        detail: format!(
            "{}{}{}",
            out.status,
            if out.stderr.is_empty() { "" } else { ": " },
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// The directory of the PostgreSQL server binaries.
fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("LIFELINE_PG_BIN").map(PathBuf::from) {
        return has_tools(&d).then_some(d);
    }
    // Debian/Ubuntu keep server binaries out of $PATH, one directory per major version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has_tools(d))
}

/// The effective uid of this process (the owner of its `/proc/self` entry).
fn current_uid() -> Result<u32, ClusterError> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// Creates a fresh 0700 directory under the temp dir, owned by the service user if we are
/// root (the server must own its data directory).
fn make_private_dir(as_service_user: bool) -> Result<PathBuf, ClusterError> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Short on purpose: the unix socket path inside it must stay under 108 bytes.
    let dir = std::env::temp_dir().join(format!(
        "lifeline-pg-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    if let Err(e) = hand_over(&dir, as_service_user) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// Gives a path to the service user when we are root.
fn hand_over(path: &Path, as_service_user: bool) -> Result<(), ClusterError> {
    if !as_service_user {
        return Ok(());
    }
    let (uid, gid) = service_user_ids()?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    Ok(())
}

/// Uid and gid of the service user, from `/etc/passwd`.
fn service_user_ids() -> Result<(u32, u32), ClusterError> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == SERVICE_USER)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .next()
        .ok_or_else(|| ClusterError::Command {
            what: "looking up the postgres user".into(),
            detail: "running as root, but there is no 'postgres' user to run the server as".into(),
        })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, ClusterError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_checked() {
        assert!(check_db_name("conf_123_4").is_ok());
        for bad in ["", "1abc", "a-b", "A", "x; DROP", &"a".repeat(64)] {
            assert!(
                matches!(check_db_name(bad), Err(ClusterError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cluster_creates_databases_and_cleans_up() {
        let c = TempCluster::start().expect("start a cluster");
        let dir = c.dir().to_path_buf();
        let a = c.fresh_database("unit").expect("first database");
        let b = c.fresh_database("unit").expect("second database");
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}/", c.port())));
        // The template really has PostGIS: ask through psql on the new database.
        let name = a.rsplit('/').next().unwrap_or_default().to_string();
        let out = c
            .client_tool("psql")
            .args([
                "--dbname",
                &name,
                "--no-psqlrc",
                "--tuples-only",
                "--no-align",
            ])
            .args(["--command", "SELECT postgis_lib_version()"])
            .output()
            .expect("run psql");
        check_output("psql", &out).expect("query the new database");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with('3'));
        assert!(matches!(
            c.create_database(&name),
            Err(ClusterError::Command { .. })
        ));
        drop(c);
        assert!(!dir.exists(), "the cluster directory is removed on drop");
    }
}
