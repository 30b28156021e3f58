//! GeoPackage geometry codec (issue 14, item 4): the store's hand-written encoder and
//! decoder (`lifeline_store::gpkg::codec`) against geozero's GeoPackage WKB, as commit
//! 55676be (branch `wkb`) used it in the store (kept below, in `geozero_codec`), on the
//! geometries the layers hold — a sensor's Point, a 20-vertex pipeline LineString and a grid
//! cell's MultiPolygon of two polygons with five rings in all.
//!
//! Before timing, it checks that both encoders write the same bytes for each geometry and
//! that each decoder reads the other's blobs back unchanged (it panics otherwise). Encoding
//! is timed from a `Geometry`, which is what the store's call site has (the layers'
//! `Schema::geometry()` clones the record's field into one).
//!
//! Then, to say whether the difference matters for an import or a start-up, it runs both
//! codecs over every geometry of the bench preset (`LIFELINE_BENCH_PRESET`, default
//! `jiulongpo`, each record's geometry taken as the store takes it) and times the store's
//! `bulk_load` and `load_all` of that preset into a fresh GeoPackage, printing Markdown rows.
//! `cargo bench -p lifeline-store --bench gpkg_codec`

use criterion::{criterion_group, criterion_main, Criterion};
use geo::{Geometry, LineString, MultiPolygon, Point, Polygon};
use lifeline_model::schema::Schema;
use lifeline_model::{Actor, Dataset, Role};
use lifeline_store::gpkg::{codec, GpkgStore};
use lifeline_store::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// geozero's GeoPackage WKB as the store used it in 55676be (crates/store/src/gpkg.rs): the
/// envelope computed first and handed to geozero's `WkbWriter` (`WkbDialect::Geopackage`);
/// the header checked by the store's `parse_header` (copied here: geozero skips the version
/// and the extended flag), the WKB read by geozero into `GeoWriter` behind a sink that puts
/// back the guards geozero lacks (count against the blob size, nesting depth 16, curves
/// refused, NaN points read). Errors are strings; otherwise unchanged.
mod geozero_codec {
    use geo::{Coord, CoordsIter, Geometry};
    use geozero::error::GeozeroError;
    use geozero::geo_types::GeoWriter;
    use geozero::wkb::{Ewkb, Wkb, WkbDialect, WkbWriter};
    use geozero::{CoordDimensions, GeomProcessor, GeozeroGeometry};

    const SRS_ID: i32 = 4490;
    /// Header size: magic (2), version (1), flags (1), srs_id (4).
    const GP_HEADER: usize = 8;
    /// Envelope [minx, maxx, miny, maxy] as four doubles.
    const GP_ENVELOPE: usize = 32;
    /// The header flag of an empty geometry.
    const GP_EMPTY: u8 = 0b0001_0000;

    /// The store's envelope, as far as the encoder needs it.
    struct Envelope {
        min_x: f64,
        max_x: f64,
        min_y: f64,
        max_y: f64,
    }

    impl Envelope {
        const EMPTY: Envelope = Envelope {
            min_x: f64::INFINITY,
            max_x: f64::NEG_INFINITY,
            min_y: f64::INFINITY,
            max_y: f64::NEG_INFINITY,
        };

        fn add(&mut self, c: Coord<f64>) {
            if c.x.is_nan() || c.y.is_nan() {
                self.min_x = f64::NAN;
                return;
            }
            self.min_x = self.min_x.min(c.x);
            self.max_x = self.max_x.max(c.x);
            self.min_y = self.min_y.min(c.y);
            self.max_y = self.max_y.max(c.y);
        }

        fn is_empty(&self) -> bool {
            self.min_x == f64::INFINITY && self.max_x == f64::NEG_INFINITY
        }
    }

    /// Encodes a geometry as a GeoPackage binary with geozero's GeoPackage WKB writer: `GP`,
    /// version 0, flags (little-endian, with an [minx, maxx, miny, maxy] envelope, or the
    /// empty flag and no envelope), srs_id 4490, then ISO WKB, 2D, little-endian.
    pub fn encode(g: &Geometry<f64>) -> Result<Vec<u8>, String> {
        // geozero writes the envelope it is given, so it is computed first.
        let mut env = Envelope::EMPTY;
        let mut n = 0;
        for c in g.coords_iter() {
            env.add(c);
            n += 1;
        }
        let empty = env.is_empty();
        let corners = if empty {
            Vec::new()
        } else {
            vec![env.min_x, env.max_x, env.min_y, env.max_y]
        };
        // Header, envelope, coordinates, and room for the WKB type headers and counts.
        let mut buf = Vec::with_capacity(GP_HEADER + GP_ENVELOPE + 16 * n + 64);
        let mut w = WkbWriter::with_opts(
            &mut buf,
            WkbDialect::Geopackage,
            CoordDimensions::xy(),
            Some(SRS_ID),
            corners,
        );
        g.process_geom(&mut w).map_err(|e| e.to_string())?;
        if empty {
            // geozero's writer sets the empty flag only through a hidden constructor.
            buf[3] |= GP_EMPTY;
        }
        Ok(buf)
    }

    /// Where the WKB starts, after the store's header checks.
    fn parse_header(b: &[u8]) -> Result<usize, String> {
        if b.len() < GP_HEADER || &b[0..2] != b"GP" {
            return Err("missing the 'GP' magic".into());
        }
        if b[2] != 0 {
            return Err(format!("unknown version {}", b[2]));
        }
        let flags = b[3];
        if flags & 0b0010_0000 != 0 {
            return Err("extended GeoPackage geometries are not supported".into());
        }
        let env_doubles = match (flags >> 1) & 0b111 {
            0 => 0,
            1 => 4,
            2 | 3 => 6,
            4 => 8,
            e => return Err(format!("invalid envelope indicator {e}")),
        };
        let wkb_at = GP_HEADER + 8 * env_doubles;
        if b.len() < wkb_at {
            return Err("truncated header".into());
        }
        Ok(wkb_at)
    }

    /// Decodes a GeoPackage binary geometry: the header by [`parse_header`], the WKB after
    /// it by geozero (ISO, or its EWKB reader for flagged types) into geo types.
    pub fn decode(b: &[u8]) -> Result<Geometry<f64>, String> {
        let wkb = &b[parse_header(b)?..];
        let mut sink = GeoSink {
            geo: GeoWriter::new(),
            len: wkb.len(),
            depth: 0,
        };
        let read = if has_ewkb_flags(wkb) {
            Ewkb(wkb).process_geom(&mut sink)
        } else {
            Wkb(wkb).process_geom(&mut sink)
        };
        read.map_err(|e| match e {
            GeozeroError::Geometry(m) => m,
            GeozeroError::IoError(_) => "truncated WKB".into(),
            GeozeroError::GeometryFormat => "unsupported WKB type".into(),
            e => e.to_string(),
        })?;
        sink.geo
            .take_geometry()
            .ok_or_else(|| "no geometry in the WKB".into())
    }

    /// Whether the type of the WKB's first geometry carries EWKB flags.
    fn has_ewkb_flags(wkb: &[u8]) -> bool {
        let Some(ty) = wkb.get(1..5).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
            return false;
        };
        let ty = if wkb[0] == 0 {
            u32::from_be_bytes(ty)
        } else {
            u32::from_le_bytes(ty)
        };
        ty & 0xE000_0000 != 0
    }

    /// geozero's geo-types writer behind the guards a decoder of stored blobs needs.
    struct GeoSink {
        geo: GeoWriter,
        /// Bytes of WKB.
        len: usize,
        /// Collections open.
        depth: usize,
    }

    impl GeoSink {
        fn count(&self, n: usize, min_size: usize) -> geozero::error::Result<()> {
            if n.saturating_mul(min_size) > self.len {
                return Err(GeozeroError::Geometry(format!(
                    "count {n} exceeds the blob"
                )));
            }
            Ok(())
        }

        fn unsupported(kind: &str) -> geozero::error::Result<()> {
            Err(GeozeroError::Geometry(format!(
                "unsupported WKB type {kind}"
            )))
        }
    }

    /// Least WKB sizes: a 2D coordinate, a ring (its count), a member geometry (its header).
    const WKB_COORD: usize = 16;
    const WKB_RING: usize = 4;
    const WKB_MEMBER: usize = 5;

    impl GeomProcessor for GeoSink {
        fn xy(&mut self, x: f64, y: f64, idx: usize) -> geozero::error::Result<()> {
            self.geo.xy(x, y, idx)
        }
        fn empty_point(&mut self, idx: usize) -> geozero::error::Result<()> {
            self.geo.point_begin(idx)?;
            self.geo.xy(f64::NAN, f64::NAN, 0)?;
            self.geo.point_end(idx)
        }
        fn point_begin(&mut self, idx: usize) -> geozero::error::Result<()> {
            self.geo.point_begin(idx)
        }
        fn point_end(&mut self, idx: usize) -> geozero::error::Result<()> {
            self.geo.point_end(idx)
        }
        fn multipoint_begin(&mut self, size: usize, idx: usize) -> geozero::error::Result<()> {
            self.count(size, WKB_MEMBER + WKB_COORD)?;
            self.geo.multipoint_begin(size, idx)
        }
        fn multipoint_end(&mut self, idx: usize) -> geozero::error::Result<()> {
            self.geo.multipoint_end(idx)
        }
        fn linestring_begin(
            &mut self,
            tagged: bool,
            size: usize,
            idx: usize,
        ) -> geozero::error::Result<()> {
            self.count(size, WKB_COORD)?;
            self.geo.linestring_begin(tagged, size, idx)
        }
        fn linestring_end(&mut self, tagged: bool, idx: usize) -> geozero::error::Result<()> {
            self.geo.linestring_end(tagged, idx)
        }
        fn multilinestring_begin(&mut self, size: usize, idx: usize) -> geozero::error::Result<()> {
            self.count(size, WKB_MEMBER)?;
            self.geo.multilinestring_begin(size, idx)
        }
        fn multilinestring_end(&mut self, idx: usize) -> geozero::error::Result<()> {
            self.geo.multilinestring_end(idx)
        }
        fn polygon_begin(
            &mut self,
            tagged: bool,
            size: usize,
            idx: usize,
        ) -> geozero::error::Result<()> {
            self.count(size, WKB_RING)?;
            self.geo.polygon_begin(tagged, size, idx)
        }
        fn polygon_end(&mut self, tagged: bool, idx: usize) -> geozero::error::Result<()> {
            self.geo.polygon_end(tagged, idx)
        }
        fn multipolygon_begin(&mut self, size: usize, idx: usize) -> geozero::error::Result<()> {
            self.count(size, WKB_MEMBER)?;
            self.geo.multipolygon_begin(size, idx)
        }
        fn multipolygon_end(&mut self, idx: usize) -> geozero::error::Result<()> {
            self.geo.multipolygon_end(idx)
        }
        fn geometrycollection_begin(
            &mut self,
            size: usize,
            idx: usize,
        ) -> geozero::error::Result<()> {
            self.depth += 1;
            if self.depth > 16 {
                return Err(GeozeroError::Geometry(
                    "collections nested too deeply".into(),
                ));
            }
            self.count(size, WKB_MEMBER)?;
            self.geo.geometrycollection_begin(size, idx)
        }
        fn geometrycollection_end(&mut self, idx: usize) -> geozero::error::Result<()> {
            self.depth -= 1;
            self.geo.geometrycollection_end(idx)
        }
        fn circularstring_begin(&mut self, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("CircularString")
        }
        fn compoundcurve_begin(&mut self, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("CompoundCurve")
        }
        fn curvepolygon_begin(&mut self, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("CurvePolygon")
        }
        fn multicurve_begin(&mut self, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("MultiCurve")
        }
        fn multisurface_begin(&mut self, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("MultiSurface")
        }
        fn triangle_begin(&mut self, _: bool, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("Triangle")
        }
        fn polyhedralsurface_begin(&mut self, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("PolyhedralSurface")
        }
        fn tin_begin(&mut self, _: usize, _: usize) -> geozero::error::Result<()> {
            Self::unsupported("TIN")
        }
    }
}

/// A pipeline segment as the generator draws them: 20 vertices, CGCS2000 degrees.
fn line20() -> LineString<f64> {
    LineString::from(
        (0..20)
            .map(|i| {
                let t = f64::from(i);
                (
                    106.512_345 + t * 1.37e-4,
                    29.498_765 + (t * 0.7).sin() * 4.1e-5,
                )
            })
            .collect::<Vec<_>>(),
    )
}

/// A closed ring of `n` vertices around (x, y).
fn ring(x: f64, y: f64, r: f64, n: usize) -> LineString<f64> {
    let mut v: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            (x + r * a.cos(), y + r * a.sin())
        })
        .collect();
    v.push(v[0]);
    LineString::from(v)
}

/// A grid cell: two polygons, five rings (exterior 40 + holes 12, 12; exterior 24 + hole 8).
fn multipolygon5() -> MultiPolygon<f64> {
    MultiPolygon(vec![
        Polygon::new(
            ring(106.45, 29.40, 0.02, 40),
            vec![
                ring(106.445, 29.40, 0.002, 12),
                ring(106.455, 29.40, 0.002, 12),
            ],
        ),
        Polygon::new(
            ring(106.50, 29.40, 0.01, 24),
            vec![ring(106.50, 29.40, 0.001, 8)],
        ),
    ])
}

/// The fastest of five runs of `f`.
fn best(mut f: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Encodes every geometry of `data` with `encode`, each taken as the store's bind takes it
/// (`Schema::geometry()`, a clone into a `Geometry`).
fn encode_all<T>(data: &Dataset, mut encode: impl FnMut(&Geometry<f64>) -> T) {
    fn each<R: Schema, T>(rs: &[R], encode: &mut impl FnMut(&Geometry<f64>) -> T) {
        for r in rs {
            if let Some(g) = r.geometry() {
                black_box(encode(&g));
            }
        }
    }
    each(&data.pipelines, &mut encode);
    each(&data.grid_cells, &mut encode);
    each(&data.risk_points, &mut encode);
    each(&data.sensors, &mut encode);
}

/// Both codecs over every geometry of the preset, and the store's load and read of it.
fn preset_totals() {
    let (data, name): (Dataset, String) = lifeline_generate::bench_dataset();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    encode_all(&data, |g| blobs.push(codec::encode(g)));
    let n = blobs.len();
    let vertices: usize = data.pipelines.iter().map(|p| p.geometry.0.len()).sum();
    println!(
        "preset {name}: {n} geometries, {} pipelines ({:.1} vertices each on average)",
        data.pipelines.len(),
        vertices as f64 / data.pipelines.len() as f64
    );
    let hand_encode = best(|| encode_all(&data, codec::encode));
    let geozero_encode = best(|| encode_all(&data, |g| geozero_codec::encode(g).ok()));
    let hand_decode = best(|| {
        for b in &blobs {
            black_box(codec::decode(b).ok());
        }
    });
    let geozero_decode = best(|| {
        for b in &blobs {
            black_box(geozero_codec::decode(b).ok());
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let actor = Actor {
        name: "bench".into(),
        key_id: None,
        role: Role::Admin,
    };
    let (load, read) = rt.block_on(async {
        let (mut load, mut read) = (Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = GpkgStore::open(&dir.path().join("b.gpkg")).expect("open");
            store.migrate().await.expect("migrate");
            let t = Instant::now();
            store.bulk_load(&data, &actor).await.expect("bulk_load");
            load = load.min(t.elapsed());
            let t = Instant::now();
            black_box(store.load_all().await.expect("load_all"));
            read = read.min(t.elapsed());
        }
        (load, read)
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name}, all {n} geometries | hand-written | geozero | difference | store (hand-written) |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| encode | {:.1} ms | {:.1} ms | {:+.1} ms | `bulk_load` {:.1} ms |",
        ms(hand_encode),
        ms(geozero_encode),
        ms(geozero_encode) - ms(hand_encode),
        ms(load)
    );
    println!(
        "| decode | {:.1} ms | {:.1} ms | {:+.1} ms | `load_all` {:.1} ms |",
        ms(hand_decode),
        ms(geozero_decode),
        ms(geozero_decode) - ms(hand_decode),
        ms(read)
    );
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

fn bench(c: &mut Criterion) {
    let geoms = [
        (
            "point",
            Geometry::Point(Point::new(106.500_512_3, 29.500_123_4)),
        ),
        ("line20", Geometry::LineString(line20())),
        ("multipolygon5", Geometry::MultiPolygon(multipolygon5())),
    ];
    for (name, g) in &geoms {
        let hand_blob = codec::encode(g);
        let geozero_blob = geozero_codec::encode(g).expect("encodes");
        assert_eq!(hand_blob, geozero_blob, "{name}: the blobs differ");
        assert_eq!(&codec::decode(&geozero_blob).expect("decodes"), g, "{name}");
        assert_eq!(
            &geozero_codec::decode(&hand_blob).expect("decodes"),
            g,
            "{name}"
        );
        println!("{name}: {} bytes, byte-identical", hand_blob.len());
    }
    preset_totals();

    let mut group = c.benchmark_group("gpkg_encode");
    for (name, geom) in &geoms {
        group.bench_function(format!("{name}/handwritten"), |b| {
            b.iter(|| codec::encode(black_box(geom)))
        });
        group.bench_function(format!("{name}/geozero"), |b| {
            b.iter(|| geozero_codec::encode(black_box(geom)).expect("encodes"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("gpkg_decode");
    for (name, geom) in &geoms {
        let blob = codec::encode(geom);
        group.bench_function(format!("{name}/handwritten"), |b| {
            b.iter(|| codec::decode(black_box(&blob)).expect("decodes"))
        });
        group.bench_function(format!("{name}/geozero"), |b| {
            b.iter(|| geozero_codec::decode(black_box(&blob)).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
