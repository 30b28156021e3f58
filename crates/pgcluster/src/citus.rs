//! A throwaway **Citus** cluster (issue 16): a coordinator and workers, each a
//! [`TempCluster`] on its own free port, started with `shared_preload_libraries = 'citus'`.
//!
//! Citus keeps its node list per database, so [`CitusCluster::fresh_database`] creates the
//! database on every node (from the template that holds PostGIS), creates `citus` and
//! `citus_columnar` in it (not in the template: Citus' maintenance daemon connects to every
//! database holding the extension, and a template in use cannot be copied), then registers
//! the nodes in it on the coordinator
//! (`citus_set_coordinator_host`, `citus_add_node`). The returned URL points at the
//! coordinator: that is all a Citus client ever talks to.
//!
//! Test settings, all of them for speed or for a cluster that lives minutes:
//! * `citus.shard_count = 4` instead of 32: every test database lays its tables out again,
//!   and shard creation dominates that (production keeps the default).
//! * TCP connections from 127.0.0.1 are trusted on every node, so the nodes reach each
//!   other without a password file; the servers listen on loopback only.
//! * `citus.node_conninfo = sslmode=disable`: no TLS between nodes on loopback.
//! * `max_prepared_transactions = 200`: Citus commits writes that touch several nodes (every
//!   write to a reference table) with two-phase commit.
//!
//! [`CitusCluster::kill_worker`] and [`CitusCluster::restart_worker`] are for fault tests:
//! the first sends SIGKILL to a worker's postmaster and all its backends, as a crash would.

use crate::{ClusterError, Options, TempCluster};
use std::sync::OnceLock;

/// The host every node listens on and registers as.
const HOST: &str = "127.0.0.1";

/// A running throwaway Citus cluster; see the module docs.
#[derive(Debug)]
pub struct CitusCluster {
    coordinator: TempCluster,
    workers: Vec<TempCluster>,
    /// Held while a database is set up: Citus' extension and node registration update
    /// shared catalogs, and concurrent set-ups fail with "tuple concurrently updated".
    setup: std::sync::Mutex<()>,
}

impl CitusCluster {
    /// Starts a coordinator and `workers` workers (about 3 s per node).
    pub fn start(workers: usize) -> Result<CitusCluster, ClusterError> {
        let coordinator = TempCluster::start_with(node_options())?;
        let workers = (0..workers)
            .map(|_| TempCluster::start_with(node_options()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CitusCluster {
            coordinator,
            workers,
            setup: std::sync::Mutex::new(()),
        })
    }

    /// The coordinator node.
    pub fn coordinator(&self) -> &TempCluster {
        &self.coordinator
    }

    /// The worker nodes.
    pub fn workers(&self) -> &[TempCluster] {
        &self.workers
    }

    /// Creates a database with a unique name starting with `prefix` on every node, registers
    /// the nodes in it, and returns the coordinator's URL for it.
    pub fn fresh_database(&self, prefix: &str) -> Result<String, ClusterError> {
        let name = self.coordinator.unique_db_name(prefix);
        // A test that panicked while holding it poisoned nothing we rely on.
        let _one_at_a_time = self.setup.lock().unwrap_or_else(|e| e.into_inner());
        let url = self.coordinator.create_database(&name)?;
        for w in &self.workers {
            w.create_database(&name)?;
        }
        for node in std::iter::once(&self.coordinator).chain(&self.workers) {
            node.psql(&name, "CREATE EXTENSION citus")?;
            node.psql(&name, "CREATE EXTENSION citus_columnar")?;
        }
        self.coordinator.psql(
            &name,
            &format!(
                "SELECT citus_set_coordinator_host('{HOST}', {})",
                self.coordinator.port()
            ),
        )?;
        for w in &self.workers {
            self.coordinator.psql(
                &name,
                &format!("SELECT citus_add_node('{HOST}', {})", w.port()),
            )?;
        }
        Ok(url)
    }

    /// Kills worker `i` the hard way: SIGKILL to its postmaster and every process it
    /// started, as a machine or process crash would. Its port stays reserved for
    /// [`CitusCluster::restart_worker`].
    pub fn kill_worker(&self, i: usize) -> Result<(), ClusterError> {
        let w = self.worker(i)?;
        let pid_file = std::fs::read_to_string(w.data_dir().join("postmaster.pid"))?;
        let pid = pid_file
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if pid.parse::<u32>().is_err() {
            return Err(ClusterError::Command {
                what: "reading the worker's postmaster.pid".into(),
                detail: format!("no process id in it: {pid_file:?}"),
            });
        }
        // Backends first (listed before the postmaster dies and they are re-parented), then
        // the postmaster, all with SIGKILL.
        let mut pids = children_of(&pid);
        pids.push(pid);
        // Some backends may have exited on their own in between, so kill's status says
        // nothing useful; whether the postmaster is gone is checked below.
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .args(&pids)
            .output()?;
        // Wait until the postmaster is really gone, so a restart does not find it alive.
        for _ in 0..100 {
            if !std::path::Path::new(&format!("/proc/{}", pids[pids.len() - 1])).exists() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(ClusterError::Command {
            what: "kill -9 of a worker".into(),
            detail: "the postmaster did not exit within 5 s".into(),
        })
    }

    /// Starts worker `i` again on its port after [`CitusCluster::kill_worker`] (crash
    /// recovery replays its WAL).
    pub fn restart_worker(&self, i: usize) -> Result<(), ClusterError> {
        self.worker(i)?.start_server()
    }

    fn worker(&self, i: usize) -> Result<&TempCluster, ClusterError> {
        self.workers.get(i).ok_or_else(|| ClusterError::Command {
            what: "choosing a worker".into(),
            detail: format!("no worker {i}: the cluster has {}", self.workers.len()),
        })
    }
}

/// How every node of a test cluster is started (see the module docs).
fn node_options() -> Options {
    let set = |n: &str, v: &str| (n.to_string(), v.to_string());
    Options {
        tls: None,
        settings: vec![
            set("shared_preload_libraries", "citus"),
            set("max_prepared_transactions", "200"),
            set("citus.shard_count", "4"),
            set("citus.node_conninfo", "sslmode=disable"),
        ],
        hba: Some(
            "local all all trust\n\
             host all all 127.0.0.1/32 trust\n\
             host all all ::1/128 trust\n"
                .into(),
        ),
    }
}

/// The process ids whose parent is `pid`, from `/proc`.
fn children_of(pid: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            name.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`: comm may hold spaces, so split after its ')'.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid == pid).then_some(name)
        })
        .collect()
}

/// The Citus cluster shared by every test of the current process: a coordinator and two
/// workers, started on first use and stopped by their watchdogs when the process ends.
///
/// # Panics
/// If the cluster cannot be started (Citus not installed: `bash scripts/setup.sh --tests`
/// builds it). This is test support: there is nothing to fall back to.
pub fn shared_citus() -> &'static CitusCluster {
    static SHARED: OnceLock<CitusCluster> = OnceLock::new();
    SHARED.get_or_init(|| match CitusCluster::start(2) {
        Ok(c) => c,
        Err(e) => panic!("cannot start the shared throwaway Citus cluster: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_distributes_a_table_over_its_workers() {
        let c = CitusCluster::start(2).expect("start a Citus cluster");
        let url = c
            .fresh_database("citus_unit")
            .expect("database on every node");
        let db = url.rsplit('/').next().unwrap_or_default().to_string();
        let nodes = c
            .coordinator()
            .psql(
                &db,
                "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary'",
            )
            .expect("count nodes");
        assert_eq!(nodes, "3", "the coordinator and two workers are registered");
        let co = c.coordinator();
        co.psql(&db, "CREATE TABLE t (k bigint, g geometry(Point, 4490))")
            .expect("create");
        co.psql(&db, "SELECT create_distributed_table('t', 'k')")
            .expect("distribute");
        co.psql(
            &db,
            "INSERT INTO t SELECT i, ST_SetSRID(ST_MakePoint(106 + i / 1000.0, 29), 4490) \
             FROM generate_series(1, 100) i",
        )
        .expect("insert");
        // Every worker holds some of the rows: read each worker's shards directly.
        let placements = co
            .psql(
                &db,
                "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 't'::regclass",
            )
            .expect("placements");
        assert_eq!(placements, "2");
        let n = co
            .psql(
                &db,
                "SELECT count(*) FROM t WHERE ST_Intersects(g, ST_MakeEnvelope(106, 28, 106.05, 30, 4490))",
            )
            .expect("spatial query across shards");
        assert_eq!(n, "50");

        // A worker killed with SIGKILL: queries touching it fail; after a restart they work.
        c.kill_worker(0).expect("kill a worker");
        assert!(co.psql(&db, "SELECT count(*) FROM t").is_err());
        c.restart_worker(0).expect("restart it");
        assert_eq!(
            co.psql(&db, "SELECT count(*) FROM t").expect("count"),
            "100"
        );
    }
}
