//! Renderings of a stored ticket (`GET /excavation/tickets/{id}?f=json|geojson|html`): the
//! check *as submitted* — the ticket's `check` document with the geometries saved beside
//! it ([`CheckGeometry`]) — drawn by the same [`report`](super::report) code as a live
//! check, plus the ticket's own state: requester, owners' responses, deadlines and the
//! notifications sent. Nothing is re-checked against today's network: a ticket is a record
//! of what the contractor was told.
//!
//! The `check` document is re-typed here ([`StoredCheck`]) because the check's own types
//! are built for output only.

use super::report;
use super::ExcavationError;
use chrono::{DateTime, NaiveDate, Utc};
use geo::{Geometry, LineString};
use lifeline_index::SpatialIndex;
use lifeline_model::check_result::{
    AccuracySource, CheckResult, Conflict, DigMethod, DigSummary, NearbyFeature, OwnerNotice,
    Severity, Summary,
};
use lifeline_model::notification::Notification;
use lifeline_model::ticket::Ticket;
use lifeline_model::{geom, Layer};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn from_gj(v: &Value) -> Option<Geometry<f64>> {
    serde_json::from_value::<geojson::Geometry>(v.clone())
        .ok()
        .and_then(|g| geom::from_geojson(g).ok())
}

#[derive(Debug, Deserialize)]
struct StoredDig {
    geometry: Value,
    area_m2: f64,
    #[serde(default)]
    width_m: Option<f64>,
    top_depth_m: f64,
    bottom_depth_m: f64,
    method: DigMethod,
    method_factor: f64,
    work_type: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    metric_crs: String,
}

#[derive(Debug, Deserialize)]
struct StoredSummary {
    violations: usize,
    warnings: usize,
    infos: usize,
    owners_to_notify: usize,
    permit_required: bool,
    depth_unknown: usize,
    verdict: String,
    text: String,
}

#[derive(Debug, Deserialize)]
struct StoredConflict {
    pipeline_id: i64,
    kind: lifeline_model::PipeKind,
    #[serde(default)]
    sub_kind: Option<lifeline_model::DrainageKind>,
    #[serde(default)]
    pressure_class: Option<lifeline_model::GasPressure>,
    #[serde(default)]
    diameter_mm: Option<f64>,
    owner_id: i64,
    owner_name: String,
    severity: Severity,
    reasons: Vec<String>,
    horizontal_distance_m: f64,
    depth_known: bool,
    #[serde(default)]
    pipe_depth_m: Option<[f64; 2]>,
    #[serde(default)]
    vertical_gap_m: Option<f64>,
    #[serde(default)]
    clearance_3d_m: Option<f64>,
    required_clearance_m: f64,
    rule_id: String,
    rule_source: String,
    rule_confirmed: bool,
    #[serde(default)]
    required_vertical_m: Option<f64>,
    #[serde(default)]
    vertical_rule_id: Option<String>,
    accuracy_m: f64,
    accuracy_source: String,
    widening_m: f64,
    tolerance_m: f64,
    info_m: f64,
    in_no_dig_zone: bool,
    permit_required: bool,
    #[serde(default)]
    protection_rule_id: Option<String>,
    #[serde(default)]
    assumed: Vec<String>,
    nearest_point: [f64; 2],
    #[serde(default)]
    if_struck: Option<lifeline_model::check_result::IfStruck>,
}

#[derive(Debug, Deserialize)]
struct StoredNearby {
    id: i64,
    kind: String,
    status: String,
    #[serde(default)]
    name: Option<String>,
    distance_m: f64,
}

/// The `check` document of a ticket, re-typed.
#[derive(Debug, Deserialize)]
struct StoredCheck {
    dig: StoredDig,
    summary: StoredSummary,
    conflicts: Vec<StoredConflict>,
    owners: Vec<OwnerNotice>,
    #[serde(default)]
    risk_points: Vec<StoredNearby>,
    #[serde(default)]
    sensors: Vec<StoredNearby>,
    rules_version: u32,
    checked_at: DateTime<Utc>,
}

/// Where the pipe geometries of a rendering came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometrySource {
    /// Saved with the ticket at submission.
    Submission,
    /// The ticket predates saved geometries: today's geometry from the index, where the
    /// pipe still exists.
    Current,
}

/// The ticket's check as a [`CheckResult`], with its geometries.
pub fn stored_check(
    t: &Ticket,
    index: &SpatialIndex,
) -> Result<(CheckResult, GeometrySource), ExcavationError> {
    let s: StoredCheck = serde_json::from_value(t.check.to_json()?).map_err(|e| {
        ExcavationError::Internal(format!(
            "ticket {}: stored check does not decode: {e}",
            t.id
        ))
    })?;
    let g = t.check_geometry.geometry();
    let g = &*g;
    let drawn = s.conflicts.len() + s.risk_points.len() + s.sensors.len();
    let source = if g.is_empty() && drawn > 0 {
        GeometrySource::Current
    } else {
        GeometrySource::Submission
    };
    let now_geometry = |layer: Layer, id: i64| index.get(layer, id).and_then(|r| r.geometry());
    let pipe = |id: i64| -> LineString<f64> {
        let found = match source {
            GeometrySource::Submission => g.pipes.get(&id).and_then(from_gj),
            GeometrySource::Current => now_geometry(Layer::Pipelines, id),
        };
        match found {
            Some(Geometry::LineString(l)) => l,
            _ => LineString::new(vec![]),
        }
    };
    let nearby = |list: Vec<StoredNearby>, saved: &BTreeMap<i64, Value>, layer: Layer| {
        list.into_iter()
            .map(|f| NearbyFeature {
                geometry: match source {
                    GeometrySource::Submission => saved.get(&f.id).and_then(from_gj),
                    GeometrySource::Current => now_geometry(layer, f.id),
                },
                id: f.id,
                kind: f.kind.into(),
                status: f.status.into(),
                name: f.name.map(Into::into),
                distance_m: f.distance_m,
            })
            .collect::<Vec<_>>()
    };
    let conflicts = s
        .conflicts
        .into_iter()
        .map(|c| Conflict {
            geometry: pipe(c.pipeline_id).into(),
            pipeline_id: c.pipeline_id,
            kind: c.kind,
            sub_kind: c.sub_kind,
            pressure_class: c.pressure_class,
            diameter_mm: c.diameter_mm,
            owner_id: c.owner_id,
            owner_name: c.owner_name.into(),
            severity: c.severity,
            reasons: c.reasons.into(),
            horizontal_distance_m: c.horizontal_distance_m,
            depth_known: c.depth_known,
            pipe_depth_m: c.pipe_depth_m,
            vertical_gap_m: c.vertical_gap_m,
            clearance_3d_m: c.clearance_3d_m,
            required_clearance_m: c.required_clearance_m,
            rule_id: c.rule_id.into(),
            rule_source: c.rule_source.into(),
            rule_confirmed: c.rule_confirmed,
            required_vertical_m: c.required_vertical_m,
            vertical_rule_id: c.vertical_rule_id.map(Into::into),
            accuracy_m: c.accuracy_m,
            accuracy_source: match c.accuracy_source.as_str() {
                "surveyed" => AccuracySource::Surveyed,
                "quality_level" => AccuracySource::QualityLevel,
                _ => AccuracySource::Unknown,
            },
            widening_m: c.widening_m,
            tolerance_m: c.tolerance_m,
            info_m: c.info_m,
            in_no_dig_zone: c.in_no_dig_zone,
            permit_required: c.permit_required,
            protection_rule_id: c.protection_rule_id.map(Into::into),
            assumed: c.assumed.into(),
            nearest_point: c.nearest_point,
            if_struck: c.if_struck,
        })
        .collect();
    let d = s.dig;
    let m = s.summary;
    let r = CheckResult {
        dig: DigSummary {
            geometry: d.geometry,
            area_m2: d.area_m2,
            width_m: d.width_m,
            top_depth_m: d.top_depth_m,
            bottom_depth_m: d.bottom_depth_m,
            method: d.method,
            method_factor: d.method_factor,
            work_type: d.work_type,
            start_date: d.start_date,
            end_date: d.end_date,
            metric_crs: d.metric_crs,
        },
        summary: Summary {
            violations: m.violations,
            warnings: m.warnings,
            infos: m.infos,
            owners_to_notify: m.owners_to_notify,
            permit_required: m.permit_required,
            depth_unknown: m.depth_unknown,
            verdict: m.verdict,
            text: m.text,
        },
        conflicts,
        owners: s.owners,
        risk_points: nearby(s.risk_points, &g.risk_points, Layer::RiskPoints),
        sensors: nearby(s.sensors, &g.sensors, Layer::Sensors),
        rules_version: s.rules_version,
        checked_at: s.checked_at,
    };
    Ok((r, source))
}

/// The ticket's own figures, as foreign members of the GeoJSON and a section of the HTML.
fn ticket_members(t: &Ticket, notifications: &[Notification], source: GeometrySource) -> Value {
    let mut m = json!({
        "id": t.id, "state": t.state, "ticket_type": t.ticket_type, "version": t.version,
        "submitted_by": t.submitted_by, "requester": t.requester,
        "created_at": t.created_at, "updated_at": t.updated_at,
        "valid_from": t.valid_from, "valid_until": t.valid_until,
        "owners": t.owners, "history": t.history, "notifications": notifications,
        "geometry_as_of": match source { GeometrySource::Submission => "submission", GeometrySource::Current => "current" },
    });
    if !t.warnings.is_empty() {
        m["warnings"] = json!(t.warnings);
    }
    m
}

/// The ticket as a GeoJSON FeatureCollection: the check's features as at submission
/// ([`report::geojson`]) plus the ticket (state, requester, owners' responses and
/// deadlines, history, notifications) as the foreign member `ticket`.
pub fn geojson(
    t: &Ticket,
    notifications: &[Notification],
    index: &SpatialIndex,
) -> Result<Value, ExcavationError> {
    let (r, source) = stored_check(t, index)?;
    let mut fc = report::geojson(&r);
    fc["ticket"] = ticket_members(t, notifications, source);
    Ok(fc)
}

fn opt_time(t: Option<DateTime<Utc>>, off: &chrono::FixedOffset) -> String {
    t.map(|t| local(t, off)).unwrap_or_default()
}

fn local(t: DateTime<Utc>, off: &chrono::FixedOffset) -> String {
    t.with_timezone(off)
        .format("%Y-%m-%d %H:%M %:z")
        .to_string()
}

/// The ticket's HTML section: state, requester, validity, owners' responses with their
/// deadlines, notifications and history.
fn ticket_section(
    t: &Ticket,
    notifications: &[Notification],
    source: GeometrySource,
    off: &chrono::FixedOffset,
) -> String {
    let esc = report::esc;
    let mut h = String::new();
    let req = &t.requester;
    h.push_str(&format!(
        "<section id=\"ticket\"><h2>Ticket {id}: {state}</h2><p class=\"verdict\">State: <b>{state}</b> ({tt} ticket, version {v})</p>\
         <table><tr><th>Requester</th><td>{name}{company}, tel {phone}{email}</td></tr>\
         <tr><th>Submitted</th><td>{created} by {by}</td></tr>\
         <tr><th>Valid</th><td>from {vf} until {vu}</td></tr></table>",
        id = t.id,
        state = t.state,
        tt = t.ticket_type,
        v = t.version,
        name = esc(&req.name),
        company = req.company.as_deref().map(|c| format!(" ({})", esc(c))).unwrap_or_default(),
        phone = esc(&req.phone),
        email = req.email.as_deref().map(|e| format!(", {}", esc(e))).unwrap_or_default(),
        created = local(t.created_at, off),
        by = esc(&t.submitted_by),
        vf = t.valid_from,
        vu = local(t.valid_until, off),
    ));
    for w in &t.warnings {
        h.push_str(&format!(
            "<p class=\"warning\"><b>Warning:</b> {}</p>",
            esc(w)
        ));
    }
    h.push_str("<h3>Owners' responses</h3><table><tr><th>Owner</th><th>Response</th><th>Due</th><th>Answered</th><th>By</th><th>Note</th><th>Late / overdue</th></tr>");
    for o in &t.owners {
        h.push_str(&format!(
            "<tr><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.owner.name),
            o.owner.owner_id,
            o.status,
            local(o.due_at, off),
            opt_time(o.responded_at, off),
            esc(o.responder.as_deref().unwrap_or("")),
            esc(o.note.as_deref().unwrap_or("")),
            if o.late { "late" } else if o.overdue { "OVERDUE" } else { "" }
        ));
    }
    h.push_str("</table><h3>Notifications</h3><table><tr><th>Owner</th><th>Channel</th><th>Address</th><th>Status</th><th>Attempts</th><th>Due</th><th>Delivered</th></tr>");
    for n in notifications {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            n.owner_id,
            n.channel,
            esc(&n.address),
            n.status,
            n.attempts,
            local(n.due_at, off),
            opt_time(n.delivered_at, off)
        ));
    }
    h.push_str("</table><h3>History</h3><table><tr><th>At</th><th>By</th><th>From</th><th>To</th><th>Note</th></tr>");
    for e in &t.history {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            local(e.at, off),
            esc(&e.actor),
            e.from.map(|f| f.to_string()).unwrap_or_default(),
            e.to,
            esc(e.note.as_deref().unwrap_or(""))
        ));
    }
    h.push_str("</table>");
    if source == GeometrySource::Current {
        h.push_str("<p><b>Note:</b> this ticket predates saved geometries; the map draws today's pipe geometries. The figures are those of the submission.</p>");
    }
    h.push_str("<p>The check below is the one made at submission; it is not re-run against today's network.</p></section>");
    h
}

/// The ticket as a printable HTML report: the ticket section, then the check as at
/// submission ([`report::html`]).
pub fn html(
    t: &Ticket,
    notifications: &[Notification],
    index: &SpatialIndex,
    off: &chrono::FixedOffset,
) -> Result<String, ExcavationError> {
    let (r, source) = stored_check(t, index)?;
    let title = format!("Excavation ticket {} — {}", t.id, t.state);
    let mut page = report::html(&r, index.crs(), &title);
    let section = ticket_section(t, notifications, source, off);
    // After the report's heading, so the ticket's state is the first thing read.
    match page.find("</h1>") {
        Some(i) => page.insert_str(i + "</h1>".len(), &section),
        None => match page.find("<body>") {
            Some(i) => page.insert_str(i + "<body>".len(), &section),
            None => page.push_str(&section),
        },
    }
    Ok(page)
}
