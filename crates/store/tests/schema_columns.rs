//! The layer schemas (`lifeline_model::schema`) against the real tables: every layer's
//! columns in a migrated PostGIS database and a migrated GeoPackage are `id`, the schema's
//! attributes (same names, same order, same types, same nullability), the geometry and
//! `updated_at`, and nothing else. A migration that adds a column the schema lacks, or a
//! schema row without its migration, fails here.

use lifeline_model::schema::{fields, Column};
use lifeline_model::{feature, Layer};
use lifeline_store::gpkg::GpkgStore;
use lifeline_store::postgis::PostgisStore;
use lifeline_store::StoreInfo;

/// One column as a database describes it: name, type, NOT NULL.
type Described = (String, String, bool);

/// What the schema says the table of `layer` holds, with each type spelt by `spell`.
/// `geometry` is the geometry column's name and type.
fn expected(
    layer: Layer,
    spell: fn(Column) -> &'static str,
    geometry: (&str, &str),
) -> Vec<Described> {
    let mut cols = vec![("id".to_string(), spell(Column::BigInt).to_string(), true)];
    for f in fields(layer) {
        cols.push((f.name.to_string(), spell(f.column).to_string(), f.required));
    }
    if layer != Layer::Owners {
        cols.push((geometry.0.to_string(), geometry.1.to_string(), true));
    }
    cols
}

#[tokio::test]
async fn postgis_columns_are_the_schema() {
    let url = lifeline_pgcluster::shared()
        .fresh_database("schema")
        .expect("create a test database");
    let store = PostgisStore::connect(&url, 2).await.expect("connect");
    store.migrate().await.expect("migrate");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect for the catalogue");
    tokio::spawn(conn);
    for layer in Layer::ALL {
        let rows = client
            .query(
                "SELECT column_name::text, udt_name::text, is_nullable = 'NO' \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                   AND column_name <> 'updated_at' \
                 ORDER BY ordinal_position",
                &[&layer.as_str()],
            )
            .await
            .expect("read the catalogue");
        let mut got: Vec<Described> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let spell = |c: Column| match c {
            Column::Text => "text",
            Column::Real => "float8",
            Column::BigInt => "int8",
            Column::Int => "int4",
            Column::Date => "date",
        };
        // PostGIS names the geometry `geom` (sensors: `location`, as in the model).
        let geom = match layer {
            Layer::Sensors => "location",
            _ => "geom",
        };
        let mut want = expected(*layer, spell, (geom, "geometry"));
        // Statements name their columns, so the physical order is free: a later migration
        // adds columns after the geometry.
        got.sort();
        want.sort();
        assert_eq!(got, want, "PostGIS {layer}");
    }
}

#[tokio::test]
async fn geopackage_columns_are_the_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("schema.gpkg");
    let store = GpkgStore::open(&path).expect("create the GeoPackage");
    store.migrate().await.expect("migrate");
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("open the file");
    for layer in Layer::ALL {
        let mut stmt = conn
            .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1) ORDER BY cid")
            .expect("prepare");
        let got: Vec<Described> = stmt
            .query_map([layer.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0))
            })
            .expect("read the table info")
            .map(|r| r.expect("a column"))
            .filter(|(name, _, _)| name != "updated_at")
            .collect();
        let spell = |c: Column| match c {
            Column::Text => "TEXT",
            Column::Real => "DOUBLE",
            Column::BigInt | Column::Int => "INTEGER",
            Column::Date => "DATE",
        };
        let geometry = match layer {
            Layer::Pipelines => "LINESTRING",
            Layer::GridCells => "MULTIPOLYGON",
            Layer::Sensors | Layer::Nodes => "POINT",
            _ => "GEOMETRY",
        };
        let geometry = (feature::geometry_field(*layer), geometry);
        let mut want = expected(*layer, spell, geometry);
        // The GeoPackage fid: an INTEGER PRIMARY KEY, which SQLite reports as nullable.
        want[0].2 = got.first().is_some_and(|c| c.2);
        // The geometry column comes first in the file (as GDAL writes it), then attributes.
        if let Some(g) = (*layer != Layer::Owners).then(|| want.pop()).flatten() {
            want.insert(1, g);
        }
        assert_eq!(got, want, "GeoPackage {layer}");
    }
}
