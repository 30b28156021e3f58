//! Renderings of a check result: a GeoJSON FeatureCollection (the dig area, one feature per
//! conflicting pipe segment, the nearest points, nearby risk points and sensors) and a
//! printable HTML report with an inline SVG map drawn in the metric CRS, so the report is
//! one self-contained file that prints without network access.

use super::check::accuracy_label;
use geo::{BoundingRect, Geometry};
use lifeline_model::check_result::{CheckResult, Severity};
use lifeline_model::crs::MetricCrs;
use lifeline_model::geom;
use serde_json::{json, Value};

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Violation => "#d7191c",
        Severity::Warning => "#fdae61",
        Severity::Info => "#2c7bb6",
    }
}

/// The check as a GeoJSON FeatureCollection. Every feature has a `role`: `dig_area`,
/// `pipe` (the conflicting pipe, with the conflict's figures as properties),
/// `nearest_point`, `risk_point` or `sensor`. The summary is a foreign member.
pub fn geojson(r: &CheckResult) -> Value {
    let mut features = vec![json!({
        "type": "Feature",
        "geometry": r.dig.geometry,
        "properties": {
            "role": "dig_area", "area_m2": r.dig.area_m2, "method": r.dig.method,
            "top_depth_m": r.dig.top_depth_m, "bottom_depth_m": r.dig.bottom_depth_m,
            "work_type": r.dig.work_type, "start_date": r.dig.start_date, "end_date": r.dig.end_date
        }
    })];
    for c in &r.conflicts {
        let mut props = serde_json::to_value(c).unwrap_or_else(|_| json!({}));
        props["role"] = json!("pipe");
        features.push(json!({
            "type": "Feature",
            "id": format!("pipe-{}", c.pipeline_id),
            "geometry": geom::to_geojson(&Geometry::LineString(c.geometry.line().clone())),
            "properties": props
        }));
        features.push(json!({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": c.nearest_point},
            "properties": {"role": "nearest_point", "pipeline_id": c.pipeline_id, "severity": c.severity,
                "horizontal_distance_m": c.horizontal_distance_m}
        }));
    }
    for (role, list) in [("risk_point", &r.risk_points), ("sensor", &r.sensors)] {
        for f in list {
            if let Some(g) = &f.geometry {
                features.push(json!({
                    "type": "Feature",
                    "geometry": geom::to_geojson(g),
                    "properties": {"role": role, "id": f.id, "kind": f.kind, "status": f.status,
                        "name": f.name, "distance_m": f.distance_m}
                }));
            }
        }
    }
    json!({
        "type": "FeatureCollection",
        "summary": r.summary,
        "owners": r.owners,
        "metric_crs": r.dig.metric_crs,
        "features": features
    })
}

pub use lifeline_model::html::esc;

/// An SVG map of the dig and the conflicting pipes, drawn in metres (north up) with a
/// scale bar. Geometries that cannot be projected are left out.
fn svg_map(r: &CheckResult, crs: &MetricCrs) -> String {
    let dig: Option<Geometry<f64>> =
        serde_json::from_value::<geojson::Geometry>(r.dig.geometry.clone())
            .ok()
            .and_then(|g| geom::from_geojson(g).ok())
            .and_then(|g| crs.to_metric(&g).ok());
    let pipes: Vec<(Severity, i64, Geometry<f64>)> = r
        .conflicts
        .iter()
        .filter_map(|c| {
            crs.to_metric(&Geometry::LineString(c.geometry.line().clone()))
                .ok()
                .map(|g| (c.severity, c.pipeline_id, g))
        })
        .collect();
    let Some(dig) = dig else {
        return String::new();
    };
    let Some(mut bb) = dig.bounding_rect() else {
        return String::new();
    };
    // Frame the dig with a margin; pipes are clipped by the SVG viewport.
    let margin = ((bb.width().max(bb.height())) * 0.25).max(10.0);
    bb = geo::Rect::new(
        geo::coord! {x: bb.min().x - margin, y: bb.min().y - margin},
        geo::coord! {x: bb.max().x + margin, y: bb.max().y + margin},
    );
    let (w, h) = (640.0, 480.0);
    let s = (w / bb.width()).min(h / bb.height());
    let tx = |x: f64| (x - bb.min().x) * s;
    let ty = |y: f64| h - (y - bb.min().y) * s;
    let path = |g: &Geometry<f64>| -> String {
        let mut d = String::new();
        let mut ring = |l: &geo::LineString<f64>, close: bool| {
            for (i, c) in l.0.iter().enumerate() {
                d.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if i == 0 { "M" } else { "L" },
                    tx(c.x),
                    ty(c.y)
                ));
            }
            if close {
                d.push_str("Z ");
            }
        };
        match g {
            Geometry::Polygon(p) => {
                ring(p.exterior(), true);
                p.interiors().iter().for_each(|r| ring(r, true));
            }
            Geometry::MultiPolygon(mp) => {
                for p in &mp.0 {
                    ring(p.exterior(), true);
                    p.interiors().iter().for_each(|r| ring(r, true));
                }
            }
            Geometry::LineString(l) => ring(l, false),
            _ => {}
        }
        d
    };
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="map of the dig and the pipelines"><rect width="{w}" height="{h}" fill="#f7f7f2" stroke="#999"/>"##
    );
    out.push_str(&format!(
        r##"<path d="{}" fill="#8c510a" fill-opacity="0.25" fill-rule="evenodd" stroke="#8c510a" stroke-width="2"/>"##,
        path(&dig)
    ));
    for (sev, id, g) in pipes.iter().rev() {
        out.push_str(&format!(
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="3"><title>pipeline {id} ({sev})</title></path>"#,
            path(g),
            severity_colour(*sev)
        ));
    }
    // Scale bar: a round number of metres about a fifth of the width.
    let target = bb.width() / 5.0;
    let mag = 10f64.powf(target.log10().floor());
    let bar = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|k| k * mag)
        .rfind(|v| *v <= target)
        .unwrap_or(mag);
    out.push_str(&format!(
        r##"<line x1="20" y1="{y}" x2="{x2:.1}" y2="{y}" stroke="#000" stroke-width="3"/><text x="20" y="{ty}" font-size="12">{bar} m</text><text x="{nx}" y="24" font-size="14">N ↑</text></svg>"##,
        y = h - 20.0,
        x2 = 20.0 + bar * s,
        ty = h - 26.0,
        nx = w - 40.0,
    ));
    out
}

/// What striking a pipe would cut off, in a sentence (HTML-safe: numbers only).
fn if_struck_text(s: &lifeline_model::check_result::IfStruck) -> String {
    let valves = if s.valves_to_close.is_empty() {
        "no valve to close".to_string()
    } else {
        format!(
            "close valve(s) {}",
            s.valves_to_close
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "{valves}; {} customer(s) lose supply; {} pipe(s) isolated{}",
        s.customers,
        s.segment_pipes,
        if s.source_inside {
            "; takes a source out of service"
        } else {
            ""
        }
    )
}

/// A printable HTML report of the check: verdict, map, conflicts, owners to call, nearby
/// risk points and sensors, and the rules used.
pub fn html(r: &CheckResult, crs: &MetricCrs, title: &str) -> String {
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;width:100%;margin:1em 0}}\
td,th{{border:1px solid #bbb;padding:3px 6px;font-size:12px;text-align:left;vertical-align:top}}\
.violation{{background:#fde0dd}}.warning{{background:#fff3d6}}.info{{background:#e6f0fa}}\
.verdict{{font-size:1.3em;font-weight:bold}}@media print{{body{{margin:0}}}}</style></head><body>",
        esc(title)
    ));
    h.push_str(&format!("<h1>{}</h1>", esc(title)));
    let d = &r.dig;
    h.push_str(&format!(
        "<p class=\"verdict {v}\">Verdict: {v} — {t}</p><p>Work: {wt}; method {m} (factor {f}); depth {top}–{bot} m; \
         area {area:.0} m²; {sd} to {ed}. Distances in metres in {crs}. Checked {at} with rules version {rv}.</p>",
        v = esc(&r.summary.verdict),
        t = esc(&r.summary.text),
        wt = esc(&d.work_type),
        m = d.method,
        f = d.method_factor,
        top = d.top_depth_m,
        bot = d.bottom_depth_m,
        area = d.area_m2,
        sd = d.start_date,
        ed = d.end_date,
        crs = esc(&d.metric_crs),
        at = r.checked_at.format("%Y-%m-%d %H:%M UTC"),
        rv = r.rules_version
    ));
    h.push_str(&svg_map(r, crs));
    h.push_str(&format!(
        "<h2>Conflicts ({} violation, {} warning, {} info)</h2><table><tr><th>Severity</th><th>Pipeline</th><th>Kind</th><th>Owner</th>\
         <th>Horizontal m</th><th>Required m</th><th>Rule</th><th>Vertical gap m</th><th>3D m</th><th>Accuracy ± m</th>\
         <th>Nearest point</th><th>Why</th><th>If struck</th></tr>",
        r.summary.violations, r.summary.warnings, r.summary.infos
    ));
    for c in &r.conflicts {
        let opt = |v: Option<f64>| v.map_or("unknown".to_string(), |x| format!("{x:.2}"));
        h.push_str(&format!(
            "<tr class=\"{sev}\"><td>{sev}</td><td>{id}</td><td>{kind}</td><td>{owner}</td><td>{hd:.2}</td><td>{rq:.2}</td>\
             <td>{rule}{conf}</td><td>{vg}</td><td>{c3}</td><td>{acc:.2} ({src})</td><td>{lon:.6}, {lat:.6}</td><td>{why}</td><td>{struck}</td></tr>",
            sev = c.severity,
            id = c.pipeline_id,
            kind = c.kind,
            owner = esc(&c.owner_name),
            hd = c.horizontal_distance_m,
            rq = c.required_clearance_m,
            rule = esc(&c.rule_id),
            conf = if c.rule_confirmed { "" } else { " (unconfirmed)" },
            vg = opt(c.vertical_gap_m),
            c3 = opt(c.clearance_3d_m),
            acc = c.accuracy_m,
            src = accuracy_label(c.accuracy_source),
            lon = c.nearest_point[0],
            lat = c.nearest_point[1],
            why = esc(&c.reasons.to_string()),
            struck = c.if_struck.as_ref().map_or(String::new(), if_struck_text),
        ));
    }
    h.push_str("</table><h2>Owners to notify</h2><table><tr><th>Owner</th><th>Emergency contact</th><th>Phone</th><th>E-mail</th><th>Worst</th><th>Pipelines</th></tr>");
    for o in &r.owners {
        h.push_str(&format!(
            "<tr class=\"{sev}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{sev}</td><td>{}</td></tr>",
            esc(&o.name),
            esc(&o.emergency_contact),
            esc(&o.emergency_phone),
            esc(o.email.as_deref().unwrap_or("")),
            o.pipeline_ids
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            sev = o.worst_severity
        ));
    }
    h.push_str("</table><h2>Risk points and sensors nearby</h2><table><tr><th>Type</th><th>Id</th><th>Kind</th><th>Status</th><th>Name</th><th>Distance m</th></tr>");
    for (t, list) in [("risk point", &r.risk_points), ("sensor", &r.sensors)] {
        for f in list {
            h.push_str(&format!(
                "<tr><td>{t}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                f.id,
                esc(&f.kind),
                esc(&f.status),
                esc(f.name.as_deref().unwrap_or("")),
                f.distance_m
            ));
        }
    }
    h.push_str("</table><p>Severity: <b>violation</b> inside the required clearance or no-dig zone; <b>warning</b> inside the tolerance zone \
        (clearance widened by the pipe's positional accuracy) or a permit zone; <b>info</b> inside the information margin. \
        Unconfirmed rules are operating defaults awaiting a check against the standard's text.</p></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }
}
