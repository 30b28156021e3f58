//! MapLibre GL styles (style spec v8) over our own tiles only: "network" (pipelines by
//! kind in the national colour convention, the network's sources, valves and customer
//! connections, grid cell outlines by level) and "risk" (the
//! risk one map: risk points by level, sensors by status, grid cells). Nothing in them
//! points outside the service: the one source is our TileJSON, there is no sprite, and
//! text labels (which need glyphs) appear only when `defaults.glyphs` names a glyph
//! server the operator runs.

use super::config::TilesConfig;
use super::LayerSet;
use lifeline_model::{Layer, PipeKind};
use serde_json::{json, Value};

/// The styles served, by name.
pub const NAMES: [&str; 2] = ["network", "risk"];

/// Pipe colours by kind, after CJJ 61-2017 《城市地下管线探测技术规程》 Appendix B (管线的
/// 种类、代号、代码与颜色): 给水 water supply sky blue (0,255,255); 排水 drainage brown
/// (76,57,38); 燃气 gas pink/magenta (255,0,255); 热力 heat orange (255,128,0); 电力 power
/// red (255,0,0), whose sub-classes include 路灯 street lighting and 交通信号 traffic
/// signals; 通信 telecom green (0,255,0), whose sub-classes include 有线电视/广播 broadcast
/// TV; 工业 industrial pipelines black (0,0,0), used here for long-distance oil/gas. Unknown
/// pipes (不明管线) are purple (102,0,204).
pub fn pipe_colour(kind: PipeKind) -> &'static str {
    match kind {
        PipeKind::WaterSupply => "#00ffff",
        PipeKind::Drainage => "#4c3926",
        PipeKind::Gas => "#ff00ff",
        PipeKind::Heat => "#ff8000",
        PipeKind::Power | PipeKind::StreetLighting | PipeKind::TrafficSignal => "#ff0000",
        PipeKind::Telecom | PipeKind::BroadcastTv => "#00ff00",
        PipeKind::OilGas => "#000000",
    }
}

/// Colour of pipes of an unknown kind (CJJ 61-2017 不明管线).
pub const UNKNOWN_PIPE_COLOUR: &str = "#6600cc";

/// Risk level colours of the risk one map: major red, large orange, general yellow, low
/// blue (domain reference §5).
const RISK_COLOURS: [(&str, &str); 4] = [
    ("major", "#e60000"),
    ("large", "#ff8c00"),
    ("general", "#ffd700"),
    ("low", "#1e78ff"),
];

fn match_expr(property: &str, pairs: &[(&str, Value)], default: Value) -> Value {
    let mut e = vec![json!("match"), json!(["get", property])];
    for (k, v) in pairs {
        e.push(json!(k));
        e.push(v.clone());
    }
    e.push(default);
    Value::Array(e)
}

fn source(base: &str, layers: &[Layer]) -> Value {
    json!({
        "type": "vector",
        "url": format!("{base}/tiles/{}.json", LayerSet::of(layers).to_path()),
        "attribution": "Lifeline",
    })
}

fn background() -> Value {
    json!({"id": "background", "type": "background", "paint": {"background-color": "#f5f3ef"}})
}

fn grid_outlines(config: &TilesConfig) -> Vec<Value> {
    let minzoom = config.layer(Layer::GridCells).map_or(0, |l| l.minzoom);
    let colour = match_expr(
        "level",
        &[
            ("district", json!("#3c3c3c")),
            ("street", json!("#5a5a5a")),
            ("community", json!("#7a7a7a")),
            ("grid", json!("#9a9a9a")),
        ],
        json!("#b4b4b4"),
    );
    let width = match_expr(
        "level",
        &[
            ("district", json!(2.5)),
            ("street", json!(1.8)),
            ("community", json!(1.2)),
            ("grid", json!(0.8)),
        ],
        json!(0.5),
    );
    vec![json!({
        "id": "grid-cells-outline",
        "type": "line",
        "source": "lifeline",
        "source-layer": "grid_cells",
        "minzoom": minzoom,
        "paint": {"line-color": colour, "line-width": width, "line-opacity": 0.8},
    })]
}

fn grid_labels(config: &TilesConfig) -> Option<Value> {
    if config.defaults.glyphs.is_empty() {
        return None;
    }
    Some(json!({
        "id": "grid-cells-label",
        "type": "symbol",
        "source": "lifeline",
        "source-layer": "grid_cells",
        "layout": {
            "text-field": ["get", "name"],
            "text-font": ["Noto Sans Regular"],
            "text-size": 12,
        },
        "paint": {"text-color": "#333333", "text-halo-color": "#ffffff", "text-halo-width": 1},
    }))
}

fn pipelines(config: &TilesConfig) -> Vec<Value> {
    let minzoom = config.layer(Layer::Pipelines).map_or(0, |l| l.minzoom);
    let pairs: Vec<(&str, Value)> = PipeKind::ALL
        .iter()
        .map(|k| (k.as_str(), json!(pipe_colour(*k))))
        .collect();
    let colour = match_expr("kind", &pairs, json!(UNKNOWN_PIPE_COLOUR));
    let width = json!(["interpolate", ["linear"], ["zoom"], 10, 0.6, 14, 1.5, 18, 4]);
    vec![
        // Planned and abandoned pipes dashed, so they are not mistaken for live ones.
        json!({
            "id": "pipelines",
            "type": "line",
            "source": "lifeline",
            "source-layer": "pipelines",
            "minzoom": minzoom,
            "filter": ["!", ["in", ["coalesce", ["get", "status"], "in_service"], ["literal", ["planned", "abandoned", "removed"]]]],
            "layout": {"line-cap": "round", "line-join": "round"},
            "paint": {"line-color": colour, "line-width": width},
        }),
        json!({
            "id": "pipelines-not-in-service",
            "type": "line",
            "source": "lifeline",
            "source-layer": "pipelines",
            "minzoom": minzoom,
            "filter": ["in", ["coalesce", ["get", "status"], "in_service"], ["literal", ["planned", "abandoned", "removed"]]],
            "paint": {"line-color": colour, "line-width": width, "line-dasharray": [2, 2], "line-opacity": 0.6},
        }),
    ]
}

fn risk_layers(config: &TilesConfig) -> Vec<Value> {
    let minzoom = config.layer(Layer::RiskPoints).map_or(0, |l| l.minzoom);
    let pairs: Vec<(&str, Value)> = RISK_COLOURS.iter().map(|(k, c)| (*k, json!(c))).collect();
    let colour = match_expr("level", &pairs, json!("#888888"));
    // Clusters carry `count`; the circle grows with it.
    let radius = json!([
        "step",
        ["coalesce", ["get", "count"], 1],
        6,
        2,
        8,
        10,
        11,
        50,
        15
    ]);
    vec![
        json!({
            "id": "risk-areas",
            "type": "fill",
            "source": "lifeline",
            "source-layer": "risk_points",
            "minzoom": minzoom,
            "filter": ["==", ["geometry-type"], "Polygon"],
            "paint": {"fill-color": colour.clone(), "fill-opacity": 0.35, "fill-outline-color": colour.clone()},
        }),
        json!({
            "id": "risk-points",
            "type": "circle",
            "source": "lifeline",
            "source-layer": "risk_points",
            "minzoom": minzoom,
            "filter": ["==", ["geometry-type"], "Point"],
            "paint": {
                "circle-color": colour,
                "circle-radius": radius,
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 1.2,
            },
        }),
    ]
}

/// The network's nodes over the pipes: sources as large discs in their network's colour
/// ringed in black, valves as small white discs ringed in the colour (filled black when
/// normally closed, grey when broken or inaccessible, for roles whose tiles carry those
/// attributes), customer connections as dots. Junctions are not drawn: the pipes show them.
fn node_layers(config: &TilesConfig) -> Vec<Value> {
    let minzoom = config.layer(Layer::Nodes).map_or(0, |l| l.minzoom);
    let pairs: Vec<(&str, Value)> = PipeKind::ALL
        .iter()
        .map(|k| (k.as_str(), json!(pipe_colour(*k))))
        .collect();
    let colour = match_expr("kind", &pairs, json!(UNKNOWN_PIPE_COLOUR));
    let of_type = |t: &str| json!(["==", ["get", "node_type"], t]);
    let valve_fill = json!([
        "case",
        [
            "==",
            ["coalesce", ["get", "valve_position"], "open"],
            "closed"
        ],
        "#000000",
        [
            "!=",
            ["coalesce", ["get", "valve_condition"], "operable"],
            "operable"
        ],
        "#9e9e9e",
        "#ffffff"
    ]);
    vec![
        json!({
            "id": "nodes-customer",
            "type": "circle",
            "source": "lifeline",
            "source-layer": "nodes",
            "minzoom": minzoom,
            "filter": of_type("customer"),
            "paint": {"circle-color": colour, "circle-radius": 2.0},
        }),
        json!({
            "id": "nodes-valve",
            "type": "circle",
            "source": "lifeline",
            "source-layer": "nodes",
            "minzoom": minzoom,
            "filter": of_type("valve"),
            "paint": {
                "circle-color": valve_fill,
                "circle-radius": 3.5,
                "circle-stroke-color": colour,
                "circle-stroke-width": 2.0,
            },
        }),
        json!({
            "id": "nodes-source",
            "type": "circle",
            "source": "lifeline",
            "source-layer": "nodes",
            "minzoom": minzoom,
            "filter": of_type("source"),
            "paint": {
                "circle-color": colour,
                "circle-radius": 7.0,
                "circle-stroke-color": "#000000",
                "circle-stroke-width": 2.0,
            },
        }),
    ]
}

fn sensor_layers(config: &TilesConfig) -> Vec<Value> {
    let minzoom = config.layer(Layer::Sensors).map_or(0, |l| l.minzoom);
    let colour = match_expr(
        "status",
        &[
            ("online", json!("#2e8b57")),
            ("offline", json!("#8c8c8c")),
            ("fault", json!("#8b00ff")),
            ("maintenance", json!("#4682b4")),
        ],
        json!("#8c8c8c"),
    );
    vec![json!({
        "id": "sensors",
        "type": "circle",
        "source": "lifeline",
        "source-layer": "sensors",
        "minzoom": minzoom,
        "paint": {
            "circle-color": colour,
            "circle-radius": ["step", ["coalesce", ["get", "count"], 1], 3, 5, 5, 50, 8],
            "circle-stroke-color": "#ffffff",
            "circle-stroke-width": 0.8,
        },
    })]
}

fn grid_fill(config: &TilesConfig) -> Value {
    let minzoom = config.layer(Layer::GridCells).map_or(0, |l| l.minzoom);
    json!({
        "id": "grid-cells-fill",
        "type": "fill",
        "source": "lifeline",
        "source-layer": "grid_cells",
        "minzoom": minzoom,
        "paint": {"fill-color": "#d9d4c7", "fill-opacity": 0.15},
    })
}

/// The source of the derived layers: a separate source, so the cached stored layers and
/// the uncached live statistics are fetched (and revalidated) independently.
fn live_source(base: &str) -> Value {
    json!({
        "type": "vector",
        "url": format!("{base}/tiles/grid_stats,alarm_density.json"),
        "attribution": "Lifeline",
    })
}

/// Choropleth of sensor coverage per grid cell (red: no risk point watched, green: all),
/// and a heat map of open alarms weighted by severity.
fn live_layers(config: &TilesConfig) -> Vec<Value> {
    let dc = &config.derived;
    vec![
        json!({
            "id": "grid-stats-coverage",
            "type": "fill",
            "source": "lifeline-live",
            "source-layer": "grid_stats",
            "minzoom": dc.grid_stats.minzoom,
            "filter": [">", ["get", "risk_points"], 0],
            "paint": {
                "fill-color": ["interpolate", ["linear"], ["get", "coverage_pct"],
                    0, "#d7191c", 50, "#fdae61", 90, "#a6d96a", 100, "#1a9641"],
                "fill-opacity": 0.35,
            },
        }),
        json!({
            "id": "alarm-density-heat",
            "type": "heatmap",
            "source": "lifeline-live",
            "source-layer": "alarm_density",
            "minzoom": dc.alarm_density.minzoom,
            "paint": {
                "heatmap-weight": ["interpolate", ["linear"], ["get", "weight"], 0, 0, 5, 1],
                "heatmap-intensity": ["interpolate", ["linear"], ["zoom"], 6, 1, 16, 3],
                "heatmap-radius": ["interpolate", ["linear"], ["zoom"], 6, 8, 16, 30],
                "heatmap-opacity": 0.7,
            },
        }),
    ]
}

/// The style called `name`, its tiles under `base`; `None` for an unknown name.
pub fn style(name: &str, config: &TilesConfig, base: &str) -> Option<Value> {
    let glyphs = &config.defaults.glyphs;
    let (title, layers, list) = match name {
        "network" => {
            let mut l = vec![background()];
            l.extend(grid_outlines(config));
            l.extend(pipelines(config));
            l.extend(node_layers(config));
            l.extend(grid_labels(config));
            (
                "Lifeline pipeline network",
                l,
                vec![Layer::GridCells, Layer::Pipelines, Layer::Nodes],
            )
        }
        "risk" => {
            let mut l = vec![background(), grid_fill(config)];
            l.extend(live_layers(config));
            l.extend(grid_outlines(config));
            l.extend(risk_layers(config));
            l.extend(sensor_layers(config));
            l.extend(grid_labels(config));
            (
                "Lifeline risk one map",
                l,
                vec![Layer::GridCells, Layer::RiskPoints, Layer::Sensors],
            )
        }
        _ => return None,
    };
    let mut s = json!({
        "version": 8,
        "name": title,
        "metadata": {"lifeline:style": name},
        "center": [106.55, 29.56],
        "zoom": 11,
        "sources": {"lifeline": source(base, &list)},
        "layers": layers,
    });
    if name == "risk" {
        s["sources"]["lifeline-live"] = live_source(base);
    }
    if !glyphs.is_empty() {
        let g = if glyphs.starts_with('/') {
            format!("{base}{glyphs}")
        } else {
            glyphs.clone()
        };
        s["glyphs"] = json!(g);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_use_only_our_source_and_every_kind_has_a_colour() {
        let c = TilesConfig::builtin();
        for name in NAMES {
            let s = style(name, c, "http://127.0.0.1:1").unwrap();
            assert_eq!(s["version"], 8);
            let text = s.to_string();
            assert!(
                !text.contains("glyphs") && !text.contains("sprite"),
                "{name}"
            );
            assert!(s["sources"]["lifeline"]["url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:1/tiles/"));
        }
        assert!(style("nope", c, "").is_none());
        let net = style("network", c, "").unwrap().to_string();
        for k in PipeKind::ALL {
            assert!(net.contains(k.as_str()), "{k}");
        }
    }
}
