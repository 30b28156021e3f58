//! The recorded progress of a resumable batch import (`lifeline import --batch-size N`),
//! as the stores keep it: which import ([`ImportJobKey`]) and how far it got ([`ImportJob`]).

use super::Layer;

/// Which import a progress row belongs to: one source layer of one file into one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJobKey {
    /// The source file's canonical path.
    pub source: String,
    /// The layer inside the source file.
    pub source_layer: String,
    /// The target layer.
    pub layer: Layer,
}

/// The recorded progress of one batch import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportJob {
    pub key: ImportJobKey,
    pub batch_size: i64,
    /// The last 1-based source row whose batch is committed (0: none yet).
    pub last_row: i64,
    /// That row's source FID, when the format has one (checked on resume).
    pub last_fid: Option<i64>,
    /// Committed totals over every run of this job.
    pub accepted: i64,
    pub rejected: i64,
    pub batches: i64,
    /// Every source row has been committed.
    pub done: bool,
    /// Who ran the last batch.
    pub actor: String,
    /// RFC 3339 UTC, millisecond precision.
    pub started_at: String,
    pub updated_at: String,
}
