//! The access audit (issue 21): what a read that returned more than a viewer may see
//! records ([`ReadEntry`]), how every audit entry is chained to the one before it
//! ([`chain_hash`], [`ChainVerifier`]), and the filter of the audit search
//! ([`AuditFilter`]). No I/O: the stores append and read the rows, the server decides when
//! to record.
//!
//! The chain: every entry carries `prev_hash` (the previous entry's `hash`, or the anchor's
//! after a retention cut, or [`GENESIS`] for the first) and `hash`, the SHA-256 over a
//! canonical encoding of its sequence number, `prev_hash` and its fields. Each field is
//! written as `<byte length>:<bytes>;` so that no choice of field contents can make two
//! different entries encode alike. PostGIS computes the same encoding in a trigger
//! (`migrations/postgis/0011_audit.sql`); the GeoPackage through an SQL function that
//! calls [`chain_hash`]. Verification recomputes it here, from the stored fields.

use crate::{Actor, Bbox, Layer, ModelError, Role};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry of a chain that was never cut.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

string_enum! {
    /// What kind of access an entry records. The read kinds are the reads that return more
    /// than a viewer may see; `quota_exceeded` and `quota_grant` belong to the quotas.
    pub enum ReadKind {
        ExcavationCheck = "excavation_check",
        TicketView = "ticket_view",
        Trace = "trace",
        OgcItems = "ogc_items",
        OgcFeature = "ogc_feature",
        Features = "features",
        Analysis = "analysis",
        Export = "export",
        Tiles = "tiles",
        QuotaExceeded = "quota_exceeded",
        QuotaGrant = "quota_grant",
    }
}

/// One read to audit: what was read, where, how much and why. The server fills it from
/// what a use case returned (capabilities return what was read; they never write the
/// audit themselves).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadEntry {
    pub kind: ReadKind,
    /// What was read, such as `ogc/pipelines/items` or `tickets/12`.
    pub target: String,
    /// The area read: the request's box, or the box of the dig's polygon.
    pub bbox: Option<Bbox>,
    /// The exact area when it is not a box (the dig's polygon), as GeoJSON.
    pub geometry: Option<serde_json::Value>,
    pub layers: Vec<Layer>,
    /// Features returned (for aggregated tiles: features over all tiles of the entry).
    pub features: u64,
    /// Why: the work type of a dig, or the ticket it belongs to, when there is one.
    pub purpose: Option<String>,
    /// Anything else worth keeping (a filter, the tile range and count, …).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ReadEntry {
    /// A read of `kind` on `target` with nothing else known yet.
    pub fn new(kind: ReadKind, target: impl Into<String>) -> ReadEntry {
        ReadEntry {
            kind,
            target: target.into(),
            bbox: None,
            geometry: None,
            layers: Vec::new(),
            features: 0,
            purpose: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The same entry over `bbox`.
    pub fn within(mut self, bbox: Option<Bbox>) -> ReadEntry {
        self.bbox = bbox;
        self
    }

    /// The same entry with its layers and feature count.
    pub fn read(mut self, layers: &[Layer], features: u64) -> ReadEntry {
        self.layers = layers.to_vec();
        self.features = features;
        self
    }

    /// The same entry with its purpose.
    pub fn purpose(mut self, purpose: Option<String>) -> ReadEntry {
        self.purpose = purpose;
        self
    }

    /// The same entry with one more detail member.
    pub fn with(mut self, key: &str, value: serde_json::Value) -> ReadEntry {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// The entry as the store appends it.
    pub fn into_record(self, request_id: Option<String>) -> AuditRecord {
        let mut detail = self.extra;
        detail.insert("layers".into(), serde_json::json!(self.layers));
        detail.insert("features".into(), serde_json::json!(self.features));
        if let Some(p) = &self.purpose {
            detail.insert("purpose".into(), serde_json::json!(p));
        }
        if let Some(b) = self.bbox {
            detail.insert("bbox".into(), serde_json::json!(<[f64; 4]>::from(b)));
        }
        if let Some(g) = self.geometry {
            detail.insert("area".into(), g);
        }
        AuditRecord {
            action: self.kind.as_str().to_string(),
            target: self.target,
            detail: serde_json::Value::Object(detail),
            bbox: self.bbox,
            request_id,
        }
    }
}

/// One entry to append to the audit log (a write's, a key change's or a read's).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    /// The area, indexed for the search (also in `detail.bbox`, which the chain covers).
    pub bbox: Option<Bbox>,
    pub request_id: Option<String>,
}

impl AuditRecord {
    /// An entry with no area and no request id.
    pub fn plain(action: &str, target: &str, detail: serde_json::Value) -> AuditRecord {
        AuditRecord {
            action: action.to_string(),
            target: target.to_string(),
            detail,
            bbox: None,
            request_id: None,
        }
    }
}

/// The fields of a stored entry that its hash covers, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainRow {
    pub id: i64,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    /// The detail exactly as the store holds it as text (its canonical JSON rendering).
    pub detail: String,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Where the stored chain begins: after a retention cut, the last removed entry's sequence
/// number and hash; for a chain never cut, 0 and [`GENESIS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainAnchor {
    pub seq: i64,
    pub hash: String,
}

impl Default for ChainAnchor {
    fn default() -> Self {
        ChainAnchor {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// The hash of one entry: SHA-256 (lowercase hex) over `<len>:<bytes>;` of `prev_hash`,
/// the sequence number, the time in microseconds since the Unix epoch, actor, role,
/// action, target, detail text and request id (empty when none).
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    at_micros: i64,
    actor: &str,
    role: &str,
    action: &str,
    target: &str,
    detail: &str,
    request_id: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    let seq = seq.to_string();
    let at = at_micros.to_string();
    for field in [
        prev_hash,
        &seq,
        &at,
        actor,
        role,
        action,
        target,
        detail,
        request_id.unwrap_or(""),
    ] {
        h.update(field.len().to_string().as_bytes());
        h.update(b":");
        h.update(field.as_bytes());
        h.update(b";");
    }
    hex::encode(h.finalize())
}

impl ChainRow {
    /// The hash this row should carry, recomputed from its fields.
    pub fn expected_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            self.seq,
            self.at.timestamp_micros(),
            &self.actor,
            &self.role,
            &self.action,
            &self.target,
            &self.detail,
            self.request_id.as_deref(),
        )
    }
}

/// Why the chain is broken at an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audit entry {id} (seq {seq}) is broken: {reason}")]
pub struct BrokenEntry {
    pub id: i64,
    pub seq: i64,
    pub reason: String,
}

/// Checks a chain entry by entry, in sequence order, from its anchor.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev_seq: i64,
    prev_hash: String,
    checked: u64,
}

impl ChainVerifier {
    /// A verifier expecting the entry after `anchor`.
    pub fn new(anchor: &ChainAnchor) -> ChainVerifier {
        ChainVerifier {
            prev_seq: anchor.seq,
            prev_hash: anchor.hash.clone(),
            checked: 0,
        }
    }

    /// Checks the next entry: no gap in the sequence, the link to the previous hash, and
    /// its own hash over its fields.
    pub fn check(&mut self, row: &ChainRow) -> Result<(), BrokenEntry> {
        let broken = |reason: String| BrokenEntry {
            id: row.id,
            seq: row.seq,
            reason,
        };
        if row.seq != self.prev_seq + 1 {
            return Err(broken(format!(
                "sequence {} follows {} (an entry is missing or inserted)",
                row.seq, self.prev_seq
            )));
        }
        if row.prev_hash != self.prev_hash {
            return Err(broken(
                "its prev_hash is not the previous entry's hash".into(),
            ));
        }
        if row.hash != row.expected_hash() {
            return Err(broken(
                "its hash does not match its fields (the entry was changed)".into(),
            ));
        }
        self.prev_seq = row.seq;
        self.prev_hash = row.hash.clone();
        self.checked += 1;
        Ok(())
    }

    /// Entries checked so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The sequence number of the last entry checked (the anchor's before any).
    pub fn last_seq(&self) -> i64 {
        self.prev_seq
    }
}

/// The audit search: every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Exact actor (key name or OIDC subject).
    pub actor: Option<String>,
    /// Exact action; `read` stands for every read kind.
    pub action: Option<String>,
    /// Entries whose area intersects this box (entries without an area never match).
    pub bbox: Option<Bbox>,
    /// Entries that name this layer among the layers read.
    pub layer: Option<Layer>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
}

impl AuditFilter {
    /// The actions an `action=` names: `read` expands to every read kind.
    pub fn actions(&self) -> Option<Vec<String>> {
        self.action.as_ref().map(|a| {
            if a == "read" {
                READ_ACTIONS
                    .iter()
                    .map(|k| k.as_str().to_string())
                    .collect()
            } else {
                vec![a.clone()]
            }
        })
    }

    /// Refuses a window that ends before it starts.
    pub fn check(&self) -> Result<(), ModelError> {
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if t < f {
                return Err(ModelError::invalid("to", "is before 'from'"));
            }
        }
        Ok(())
    }
}

/// The kinds that are reads of data (not quota bookkeeping).
pub const READ_ACTIONS: &[ReadKind] = &[
    ReadKind::ExcavationCheck,
    ReadKind::TicketView,
    ReadKind::Trace,
    ReadKind::OgcItems,
    ReadKind::OgcFeature,
    ReadKind::Features,
    ReadKind::Analysis,
    ReadKind::Export,
    ReadKind::Tiles,
];

/// Whether an actor's reads are audited: every role above viewer sees more than a viewer
/// may (owners, depths, restricted attributes).
pub fn audited(actor: &Actor) -> bool {
    actor.role > Role::Viewer
}

/// Whether an actor may read the audit log: admins and auditors.
pub fn may_read_audit(actor: &Actor) -> Result<(), crate::access::Forbidden> {
    if actor.role == Role::Admin || actor.role == Role::Auditor {
        Ok(())
    } else {
        Err(crate::access::Forbidden {
            needed: Role::Auditor,
            has: actor.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, prev: &str) -> ChainRow {
        let mut r = ChainRow {
            id: seq + 100,
            seq,
            at: DateTime::from_timestamp_micros(1_800_000_000_123_456 + seq).unwrap(),
            actor: "crew".into(),
            role: "contractor".into(),
            action: "excavation_check".into(),
            target: "excavation/check".into(),
            detail: format!("{{\"features\": {seq}}}"),
            request_id: Some(format!("req-{seq}")),
            prev_hash: prev.into(),
            hash: String::new(),
        };
        r.hash = r.expected_hash();
        r
    }

    fn chain(n: i64, anchor: &ChainAnchor) -> Vec<ChainRow> {
        let mut out: Vec<ChainRow> = Vec::new();
        for i in 0..n {
            let prev = out.last().map_or(anchor.hash.clone(), |r| r.hash.clone());
            out.push(row(anchor.seq + 1 + i, &prev));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_any_change_is_named() {
        let rows = chain(5, &ChainAnchor::default());
        let mut v = ChainVerifier::new(&ChainAnchor::default());
        for r in &rows {
            v.check(r).unwrap();
        }
        assert_eq!(v.checked(), 5);

        // A changed field: the third entry is named.
        let mut tampered = rows.clone();
        tampered[2].actor = "someone-else".into();
        let mut v = ChainVerifier::new(&ChainAnchor::default());
        let err = tampered.iter().find_map(|r| v.check(r).err()).unwrap();
        assert_eq!((err.id, err.seq), (tampered[2].id, 3));
        assert!(err.reason.contains("changed"), "{err}");

        // A removed entry: the one after the gap is named.
        let mut gap = rows.clone();
        gap.remove(1);
        let mut v = ChainVerifier::new(&ChainAnchor::default());
        let err = gap.iter().find_map(|r| v.check(r).err()).unwrap();
        assert_eq!(err.seq, 3);

        // A rehashed entry still breaks the link to the next one.
        let mut rehashed = rows.clone();
        rehashed[1].detail = "{}".into();
        rehashed[1].hash = rehashed[1].expected_hash();
        let mut v = ChainVerifier::new(&ChainAnchor::default());
        let err = rehashed.iter().find_map(|r| v.check(r).err()).unwrap();
        assert_eq!(err.seq, 3);
        assert!(err.reason.contains("prev_hash"), "{err}");
    }

    #[test]
    fn a_cut_chain_verifies_from_its_anchor() {
        let full = chain(6, &ChainAnchor::default());
        let anchor = ChainAnchor {
            seq: full[2].seq,
            hash: full[2].hash.clone(),
        };
        let mut v = ChainVerifier::new(&anchor);
        for r in &full[3..] {
            v.check(r).unwrap();
        }
        assert_eq!((v.checked(), v.last_seq()), (3, 6));
        // From the genesis the cut chain does not verify.
        let mut v = ChainVerifier::new(&ChainAnchor::default());
        assert!(v.check(&full[3]).is_err());
    }

    #[test]
    fn the_encoding_keeps_fields_apart() {
        // Moving a character from one field to the next changes the hash.
        let a = chain_hash(GENESIS, 1, 0, "ab", "c", "x", "t", "{}", None);
        let b = chain_hash(GENESIS, 1, 0, "a", "bc", "x", "t", "{}", None);
        assert_ne!(a, b);
        // No request id and an empty one are the same field.
        assert_eq!(
            a,
            chain_hash(GENESIS, 1, 0, "ab", "c", "x", "t", "{}", Some(""))
        );
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn read_entries_carry_their_area_and_purpose_in_the_detail() {
        let b = Bbox::new(106.5, 29.5, 106.6, 29.6).unwrap();
        let rec = ReadEntry::new(ReadKind::ExcavationCheck, "excavation/check")
            .within(Some(b))
            .read(&[Layer::Pipelines], 7)
            .purpose(Some("road".into()))
            .into_record(Some("r1".into()));
        assert_eq!(rec.action, "excavation_check");
        assert_eq!(rec.detail["features"], 7);
        assert_eq!(rec.detail["layers"], serde_json::json!(["pipelines"]));
        assert_eq!(rec.detail["purpose"], "road");
        assert_eq!(rec.detail["bbox"][0], 106.5);
        assert_eq!(rec.bbox, Some(b));
        assert_eq!(rec.request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn only_admins_and_auditors_read_the_audit_log_and_viewers_are_not_audited() {
        for role in Role::ALL {
            let a = Actor {
                name: "k".into(),
                key_id: None,
                role: *role,
            };
            assert_eq!(
                may_read_audit(&a).is_ok(),
                matches!(role, Role::Admin | Role::Auditor)
            );
            assert_eq!(audited(&a), *role > Role::Viewer);
        }
        let f = AuditFilter {
            action: Some("read".into()),
            ..Default::default()
        };
        assert_eq!(f.actions().unwrap().len(), READ_ACTIONS.len());
    }
}
