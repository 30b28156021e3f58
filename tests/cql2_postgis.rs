//! CQL2 against PostGIS: each filter of the table, in its cql2-text and cql2-json forms,
//! selects through the OGC API (evaluated in Rust over the R-tree) exactly the pipelines
//! that a hand-written PostGIS query with bound parameters selects from the same rows. The
//! rows are the generated demo district (615 pipelines of every kind, material, age).
//! Every case runs through both query paths, forced with the `X-Ogc-Plan` header: the
//! index path (Rust over the R-tree) and, for filters without a spatial predicate, the SQL
//! pushdown path (the filter translated to PostGIS SQL with bound parameters); `auto` must
//! pick SQL for those and the index for spatial ones. Sorted pages are compared too.
//! Also: reprojected output equals PostGIS `ST_Transform`. All of it on plain PostGIS and on
//! Citus (issue 16).

mod app;

use app::{Backend, TestApp};
use lifeline::generate::{generate, GenerateOptions, Preset};
use lifeline::model::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_postgres::types::ToSql;

type Param = Box<dyn ToSql + Sync + Send>;

struct Case {
    text: &'static str,
    /// A hand-written cql2-json form; otherwise the text is converted by the `cql2` crate.
    json: Option<&'static str>,
    sql: String,
    params: Vec<Param>,
}

fn case(text: &'static str, json: Option<&'static str>, sql: &str, params: Vec<Param>) -> Case {
    Case {
        text,
        json,
        sql: sql.to_string(),
        params,
    }
}

/// Runs an items request with the plan header; checks the plan the server reports.
async fn get_items(app: &TestApp, query: &str, plan: &str, want_plan: &str) -> Value {
    let path = format!("/ogc/collections/pipelines/items?{query}");
    let r = app
        .req(Method::GET, &path, Some(Role::Analyst))
        .header("x-ogc-plan", plan)
        .send()
        .await
        .unwrap();
    let s = r.status();
    let used = r
        .headers()
        .get("x-ogc-plan")
        .map(|h| h.to_str().unwrap().to_string());
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, StatusCode::OK, "{query}: {v}");
    assert_eq!(used.as_deref(), Some(want_plan), "{query} with plan {plan}");
    v
}

fn ids_of(v: &Value) -> Vec<i64> {
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect()
}

async fn api_ids(app: &TestApp, filter: &str, lang: &str, plan: &str, want_plan: &str) -> Vec<i64> {
    let query = format!(
        "limit=10000&filter-lang={lang}&filter={}",
        lifeline::ogc::encode(filter)
    );
    let v = get_items(app, &query, plan, want_plan).await;
    let mut ids = ids_of(&v);
    ids.sort_unstable();
    assert_eq!(v["numberMatched"].as_u64().unwrap() as usize, ids.len());
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql2_matches_postgis() {
    cql2_matches(Backend::Postgis).await
}

/// The same on Citus (issue 16): the pushdown's SQL runs on the coordinator against the
/// reference tables, and must select what the index path and plain PostGIS SQL select.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql2_matches_postgis_on_citus() {
    cql2_matches(Backend::Citus).await
}

async fn cql2_matches(backend: Backend) {
    let app = TestApp::start_with(backend, Some(Role::Viewer), false).await;
    let (data, _) = generate(&GenerateOptions {
        preset: Preset::Demo,
        seed: 42,
        progress: false,
    })
    .unwrap();
    let total = data.pipelines.len();
    let r = app
        .req(Method::POST, "/bulk", Some(Role::Operator))
        .json(&data)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let ready: Value = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let metric: i32 = ready["index"]["metric_crs"]
        .as_str()
        .unwrap()
        .trim_start_matches("EPSG:")
        .parse()
        .unwrap();

    let (pg, conn) = tokio_postgres::connect(&app.store_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);

    // A box and a point inside the generated district.
    let poly =
        "POLYGON((106.485 29.52, 106.50 29.52, 106.50 29.535, 106.485 29.535, 106.485 29.52))";
    let p: fn(&'static str) -> Param = |s| Box::new(s.to_string());
    let cases = vec![
        case("kind = 'gas'", Some(r#"{"op":"=","args":[{"property":"kind"},"gas"]}"#), "kind = $1", vec![p("gas")]),
        case("kind <> 'gas'", None, "kind <> $1", vec![p("gas")]),
        case("diameter_mm > 300", None, "diameter_mm > $1", vec![Box::new(300.0f64)]),
        case("diameter_mm <= 200 AND kind = 'water_supply'", None, "diameter_mm <= $1 AND kind = $2", vec![Box::new(200.0f64), p("water_supply")]),
        case("material LIKE 'cast%'", Some(r#"{"op":"like","args":[{"property":"material"},"cast%"]}"#), "material LIKE $1", vec![p("cast%")]),
        case("material LIKE '%PE%' OR material LIKE '_VC'", None, "material LIKE $1 OR material LIKE $2", vec![p("%PE%"), p("_VC")]),
        case("kind IN ('gas', 'power', 'heat')", Some(r#"{"op":"in","args":[{"property":"kind"},["gas","power","heat"]]}"#), "kind = ANY($1)", vec![Box::new(vec!["gas".to_string(), "power".into(), "heat".into()])]),
        case("diameter_mm BETWEEN 150 AND 400", None, "diameter_mm BETWEEN $1 AND $2", vec![Box::new(150.0f64), Box::new(400.0f64)]),
        case("pressure_class IS NULL", None, "pressure_class IS NULL", vec![]),
        case("pressure_class IS NOT NULL", None, "pressure_class IS NOT NULL", vec![]),
        // Three-valued logic: NOT over a NULL comparison selects nothing, as in SQL.
        case("NOT (pressure_class = 'medium_b')", None, "NOT (pressure_class = $1)", vec![p("medium_b")]),
        case("CASEI(material) = 'cast iron'", None, "lower(material) = $1", vec![p("cast iron")]),
        case("year_built + 20 < 2010", None, "year_built + 20 < $1", vec![Box::new(2010i32)]),
        case("S_INTERSECTS(geometry, POLYGON((106.485 29.52, 106.50 29.52, 106.50 29.535, 106.485 29.535, 106.485 29.52)))",
            Some(r#"{"op":"s_intersects","args":[{"property":"geometry"},{"type":"Polygon","coordinates":[[[106.485,29.52],[106.50,29.52],[106.50,29.535],[106.485,29.535],[106.485,29.52]]]}]}"#),
            "ST_Intersects(geom, ST_GeomFromText($1, 4490))", vec![p(poly)]),
        case("S_WITHIN(geometry, POLYGON((106.485 29.52, 106.50 29.52, 106.50 29.535, 106.485 29.535, 106.485 29.52)))", None,
            "ST_Within(geom, ST_GeomFromText($1, 4490))", vec![p(poly)]),
        case("S_DISJOINT(geometry, POLYGON((106.485 29.52, 106.50 29.52, 106.50 29.535, 106.485 29.535, 106.485 29.52))) AND kind = 'telecom'", None,
            "ST_Disjoint(geom, ST_GeomFromText($1, 4490)) AND kind = $2", vec![p(poly), p("telecom")]),
        case("S_DWITHIN(geometry, POINT(106.495 29.53), 150)", None,
            "ST_DWithin(ST_Transform(geom, $2::int4), ST_Transform(ST_GeomFromText($1, 4490), $2::int4), $3)", vec![p("POINT(106.495 29.53)"), Box::new(metric), Box::new(150.0f64)]),
        case("T_BEFORE(survey_date, DATE('2019-01-01'))", None, "survey_date < $1", vec![Box::new(chrono::NaiveDate::from_ymd_opt(2019, 1, 1).unwrap())]),
        case("T_AFTER(survey_date, DATE('2021-06-30'))", None, "survey_date > $1", vec![Box::new(chrono::NaiveDate::from_ymd_opt(2021, 6, 30).unwrap())]),
        case("T_DURING(survey_date, INTERVAL('2018-01-01', '2020-12-31'))", None, "survey_date > $1 AND survey_date < $2",
            vec![Box::new(chrono::NaiveDate::from_ymd_opt(2018, 1, 1).unwrap()), Box::new(chrono::NaiveDate::from_ymd_opt(2020, 12, 31).unwrap())]),
        case("T_INTERSECTS(survey_date, INTERVAL('2020-01-01', '..'))", None, "survey_date >= $1", vec![Box::new(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap())]),
        case("kind = 'drainage' AND (diameter_mm >= 600 OR sub_kind = 'storm')", None, "kind = $1 AND (diameter_mm >= $2 OR sub_kind = $3)", vec![p("drainage"), Box::new(600.0f64), p("storm")]),
    ];
    let mut empty = Vec::new();
    for c in &cases {
        let params: Vec<&(dyn ToSql + Sync)> = c
            .params
            .iter()
            .map(|b| &**b as &(dyn ToSql + Sync))
            .collect();
        let rows = pg
            .query(
                &format!("SELECT id FROM pipelines WHERE {} ORDER BY id", c.sql),
                &params,
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", c.sql));
        let want: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let spatial = c.text.contains("S_");
        let auto = if spatial { "index" } else { "sql" };
        let json = match c.json {
            Some(j) => j.to_string(),
            None => cql2::parse_text(c.text).unwrap().to_json().unwrap(),
        };
        for (plan, used) in [("index", "index"), ("auto", auto), ("sql", "sql")] {
            if spatial && plan == "sql" {
                // A forced SQL plan for a spatial filter is refused, naming why.
                let path = format!(
                    "/ogc/collections/pipelines/items?filter={}",
                    lifeline::ogc::encode(c.text)
                );
                let r = app
                    .req(Method::GET, &path, Some(Role::Analyst))
                    .header("x-ogc-plan", "sql")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", c.text);
                assert!(r.text().await.unwrap().contains("R-tree"));
                continue;
            }
            let got = api_ids(&app, c.text, "cql2-text", plan, used).await;
            assert_eq!(got, want, "cql2-text {} ({plan})", c.text);
            let got = api_ids(&app, &json, "cql2-json", plan, used).await;
            assert_eq!(got, want, "cql2-json {json} ({plan})");
        }
        assert!(
            want.len() < total,
            "{} selects every row; the case tells nothing",
            c.text
        );
        if want.is_empty() {
            empty.push(c.text);
        }
    }
    // The table must exercise real selections, not empty answers.
    assert!(empty.is_empty(), "cases that select nothing: {empty:?}");

    // Sorted, paged pages are equal through both paths and equal PostgreSQL's own order
    // (NULLs last ascending, first descending; strings bytewise; then id).
    let rows = pg
        .query(
            "SELECT id FROM pipelines WHERE kind <> $1 ORDER BY material COLLATE \"C\" DESC, diameter_mm, id",
            &[&"telecom"],
        )
        .await
        .unwrap();
    let want: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    for (offset, limit) in [(0usize, 50usize), (37, 25), (want.len() - 10, 50)] {
        let q = format!(
            "filter={}&sortby=-material,diameter_mm&limit={limit}&offset={offset}",
            lifeline::ogc::encode("kind <> 'telecom'")
        );
        let end = (offset + limit).min(want.len());
        for plan in ["index", "sql"] {
            let v = get_items(&app, &q, plan, plan).await;
            assert_eq!(
                ids_of(&v),
                want[offset..end].to_vec(),
                "{plan} {offset}+{limit}"
            );
            assert_eq!(v["numberMatched"].as_u64().unwrap() as usize, want.len());
        }
    }
    // datetime pushes down too.
    let rows = pg
        .query(
            "SELECT id FROM pipelines WHERE survey_date BETWEEN $1 AND $2 ORDER BY id",
            &[
                &chrono::NaiveDate::from_ymd_opt(2019, 3, 1).unwrap(),
                &chrono::NaiveDate::from_ymd_opt(2020, 2, 29).unwrap(),
            ],
        )
        .await
        .unwrap();
    let want: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert!(!want.is_empty());
    for plan in ["index", "sql"] {
        let v = get_items(
            &app,
            "datetime=2019-03-01T00:00:00Z/2020-02-29T12:00:00Z&limit=10000&sortby=id",
            plan,
            plan,
        )
        .await;
        assert_eq!(ids_of(&v), want, "datetime ({plan})");
    }

    // Reprojection: the API's Gauss–Krüger output (northing, easting) equals ST_Transform.
    let rows = pg.query("SELECT id, ST_X(ST_Transform(location, $1::int4)), ST_Y(ST_Transform(location, $1::int4)) FROM sensors ORDER BY id LIMIT 20", &[&metric]).await.unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let (id, e, n): (i64, f64, f64) = (r.get(0), r.get(1), r.get(2));
        let path = format!("/ogc/collections/sensors/items/{id}?crs=http://www.opengis.net/def/crs/EPSG/0/{metric}");
        let f: Value = app
            .req(Method::GET, &path, None)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let c = &f["geometry"]["coordinates"];
        assert!(
            (c[0].as_f64().unwrap() - n).abs() < 0.001
                && (c[1].as_f64().unwrap() - e).abs() < 0.001,
            "sensor {id}: {c} vs ST_Transform ({n}, {e})"
        );
    }
    app.stop().await;
}
