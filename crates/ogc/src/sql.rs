//! SQL pushdown of items queries to PostGIS: a compiled CQL2 [`Filter`] (plus `datetime` and
//! `sortby`) is translated into a `WHERE … ORDER BY … LIMIT … OFFSET …` over the layer's
//! table, and the store returns the page's ids and the match count; the features are then
//! taken from the index (the same records, written store-first), so both paths render
//! identically.
//!
//! Safety: user text never reaches the SQL string. Every literal becomes a bound parameter
//! (`$n` with an explicit cast); identifiers come only from the compiled filter, whose
//! property names are the queryables whitelist (`&'static str` from the attribute table of
//! `/layers`), and are checked against that table again here before being quoted. The only
//! constants written into the text are ours (`TRUE`, `'infinity'`, operators).
//!
//! Semantics equal the Rust evaluator ([`super::cql`]): three-valued logic is SQL's own;
//! strings compare bytewise (`COLLATE "C"`), as Rust does; dates are midnight UTC instants
//! (`date::timestamp AT TIME ZONE 'UTC'`); arithmetic is in `float8` and division by zero
//! is NULL (`NULLIF`); ordering is ascending NULLS LAST / descending NULLS FIRST, then `id`.
//! Spatial predicates are not pushed down: the R-tree answers them (see [`plan`]).
//!
//! `tests/cql2_postgis.rs` runs its whole filter table through both paths.

use super::cql::{Arith, Cmp, Filter, Node, Val};
use super::queryables::QType;
use super::{ItemsQuery, OgcError, TimeWindow};
use lifeline_model::Layer;
use lifeline_store::Backend;

pub use lifeline_store::pushdown::{OgcStore, Param, SqlPage, SqlQuery};

/// Which path answers an items query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// R-tree candidates (or the whole layer) filtered in Rust.
    Index,
    /// SQL in PostGIS, records then taken from the index.
    Sql,
}

impl Plan {
    /// The name the `X-Ogc-Plan` response header carries: `index` or `sql`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Index => "index",
            Plan::Sql => "sql",
        }
    }
}

/// What the client asked for in the `X-Ogc-Plan` request header (for tests and
/// diagnosis; the default is `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanRequest {
    Auto,
    Force(Plan),
}

impl PlanRequest {
    /// Parses the header value: `auto`, `index` or `sql`.
    pub fn parse(s: Option<&str>) -> Result<Self, OgcError> {
        match s.map(str::trim) {
            None | Some("") | Some("auto") => Ok(PlanRequest::Auto),
            Some("index") => Ok(PlanRequest::Force(Plan::Index)),
            Some("sql") => Ok(PlanRequest::Force(Plan::Sql)),
            Some(o) => Err(OgcError::bad(format!(
                "X-Ogc-Plan '{}' is not one of auto, index, sql",
                o.chars().take(20).collect::<String>()
            ))),
        }
    }
}

/// Chooses the path. The index answers anything with a `bbox` or a spatial predicate (the
/// R-tree narrows the candidates to a window), plain pages with no filter or sort (the
/// index walks the layer in memory), and everything on a GeoPackage store. PostGIS answers
/// the rest in `auto` mode — attribute or time filters and attribute sorts over the whole
/// layer — where the index would scan every record of the layer per request. A forced `sql`
/// plan that cannot be pushed down is a 400 naming why.
pub fn plan(
    req: PlanRequest,
    backend: Backend,
    layer: Layer,
    q: &ItemsQuery,
) -> Result<Plan, OgcError> {
    let why_not = if backend != Backend::Postgis {
        Some("the store is a GeoPackage")
    } else if q.bbox.is_some() {
        Some("bbox is answered by the R-tree")
    } else if q.filter.as_ref().is_some_and(Filter::is_spatial) {
        Some("spatial predicates are answered by the R-tree")
    } else {
        translate(layer, q)
            .err()
            .map(|_| "the filter cannot be written as SQL")
    };
    match req {
        PlanRequest::Force(Plan::Index) => Ok(Plan::Index),
        PlanRequest::Force(Plan::Sql) => match why_not {
            None => Ok(Plan::Sql),
            Some(w) => Err(OgcError::bad(format!(
                "X-Ogc-Plan sql: this query cannot be pushed down ({w})"
            ))),
        },
        PlanRequest::Auto => {
            let whole_layer_work =
                q.filter.is_some() || !q.sortby.is_empty() || q.datetime.is_some();
            Ok(if why_not.is_none() && whole_layer_work {
                Plan::Sql
            } else {
                Plan::Index
            })
        }
    }
}

/// Translates an items query (filter, datetime, sortby, limit, offset) for the layer's
/// table. Fails (with the reason) on what SQL cannot express the same way.
pub fn translate(layer: Layer, q: &ItemsQuery) -> Result<SqlQuery, String> {
    if layer == Layer::Owners && q.datetime.is_some() {
        return Err("owners have no time".into());
    }
    let table = layer.as_str();
    let mut b = Builder {
        layer,
        params: Vec::new(),
    };
    let mut conds = Vec::new();
    if let Some(f) = &q.filter {
        conds.push(b.pred(&f.root)?);
    }
    if let Some(w) = &q.datetime {
        conds.push(b.datetime(w)?);
    }
    let where_sql = if conds.is_empty() {
        "TRUE".to_string()
    } else {
        conds.join(" AND ")
    };
    let mut order = Vec::new();
    for (name, desc) in &q.sortby {
        if name == "id" {
            order.push(format!("id{}", if *desc { " DESC" } else { "" }));
            continue;
        }
        let (col, t) = b.column(name)?;
        let coll = if t == QType::String {
            " COLLATE \"C\""
        } else {
            ""
        };
        order.push(format!("{col}{coll}{}", if *desc { " DESC" } else { "" }));
    }
    order.push("id".into());
    let n = b.params.len();
    Ok(SqlQuery {
        page_sql: format!(
            "SELECT id FROM {table} WHERE {where_sql} ORDER BY {} LIMIT ${}::int8 OFFSET ${}::int8",
            order.join(", "),
            n + 1,
            n + 2
        ),
        count_sql: format!("SELECT count(*) FROM {table} WHERE {where_sql}"),
        params: b.params,
        limit: q.limit as i64,
        offset: q.offset.min(i64::MAX as usize) as i64,
    })
}

struct Builder {
    layer: Layer,
    params: Vec<Param>,
}

/// The SQL type class of an expression, for collation and date handling.
#[derive(Debug, Clone, Copy, PartialEq)]
enum T {
    Str,
    Num,
    Time,
    Other,
}

impl Builder {
    fn bind(&mut self, p: Param) -> String {
        let cast = match p {
            Param::Text(_) => "text",
            Param::F64(_) => "float8",
            Param::I64(_) => "int8",
            Param::Time(_) => "timestamptz",
        };
        self.params.push(p);
        format!("${}::{cast}", self.params.len())
    }

    /// A quoted column of the layer's table; only names of the attribute table pass.
    fn column(&self, name: &str) -> Result<(String, QType), String> {
        let q = super::queryables::queryables(self.layer, lifeline_model::Role::Admin)
            .into_iter()
            .find(|q| q.name == name)
            .ok_or_else(|| format!("'{name}' is not a column of {}", self.layer))?;
        // Attribute names are lower-case identifiers; refuse anything else outright.
        if !q
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("'{name}' is not a plain identifier"));
        }
        Ok((format!("\"{}\"", q.name), q.qtype))
    }

    fn datetime(&mut self, w: &TimeWindow) -> Result<String, String> {
        let tp = super::queryables::temporal_property(self.layer)
            .ok_or_else(|| format!("{} has no time", self.layer))?;
        let (col, _) = self.column(tp)?;
        let d = format!("({col}::timestamp AT TIME ZONE 'UTC')");
        let mut parts = vec![format!("{col} IS NOT NULL")];
        if let Some(s) = w.0 {
            // A date covers its whole day: it meets the window unless its day ends before.
            let p = self.bind(Param::Time(s));
            parts.push(format!("{d} + interval '1 day' > {p}"));
        }
        if let Some(e) = w.1 {
            let p = self.bind(Param::Time(e));
            parts.push(format!("{d} <= {p}"));
        }
        Ok(format!("({})", parts.join(" AND ")))
    }

    fn pred(&mut self, n: &Node) -> Result<String, String> {
        Ok(match n {
            Node::And(v) | Node::Or(v) => {
                let op = if matches!(n, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = v
                    .iter()
                    .map(|c| self.pred(c))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(op))
            }
            Node::Not(a) => format!("(NOT {})", self.pred(a)?),
            Node::Cmp(c, a, b) => {
                let (x, tx) = self.expr(a)?;
                let (y, ty) = self.expr(b)?;
                let op = match c {
                    Cmp::Eq => "=",
                    Cmp::Ne => "<>",
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                let coll = if tx == T::Str || ty == T::Str {
                    " COLLATE \"C\""
                } else {
                    ""
                };
                format!("({x}{coll} {op} {y})")
            }
            Node::Like(a, p) => {
                if let Node::Lit(Val::Str(s)) = &**p {
                    // PostgreSQL refuses a pattern ending in a lone escape; Rust reads it
                    // as a literal backslash. Leave such patterns to the index path.
                    let trailing = s.chars().rev().take_while(|c| *c == '\\').count();
                    if trailing % 2 == 1 {
                        return Err("LIKE pattern ends with an escape character".into());
                    }
                } else {
                    return Err("LIKE patterns must be literals".into());
                }
                let (x, _) = self.expr(a)?;
                let (y, _) = self.expr(p)?;
                format!("({x} LIKE {y})")
            }
            Node::Between(a, lo, hi) => {
                let (x, tx) = self.expr(a)?;
                let (l, _) = self.expr(lo)?;
                let (h, _) = self.expr(hi)?;
                let coll = if tx == T::Str { " COLLATE \"C\"" } else { "" };
                format!("({x}{coll} BETWEEN {l} AND {h})")
            }
            Node::In(a, list) => {
                let (x, _) = self.expr(a)?;
                let items = list
                    .iter()
                    .map(|i| self.expr(i).map(|e| e.0))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({x} IN ({}))", items.join(", "))
            }
            Node::IsNull(a) => format!("({} IS NULL)", self.expr(a)?.0),
            Node::Temporal(op, a, b) => {
                let (a_s, a_e) = self.span(a)?;
                let (b_s, b_e) = self.span(b)?;
                temporal_sql(op, &a_s, &a_e, &b_s, &b_e)?
            }
            Node::Lit(Val::Bool(true)) => "TRUE".into(),
            Node::Lit(Val::Bool(false)) => "FALSE".into(),
            Node::Spatial(..) | Node::DWithin(_) => {
                return Err("spatial predicates stay on the R-tree".into())
            }
            other => return Err(format!("{other:?} is not a predicate")),
        })
    }

    fn expr(&mut self, n: &Node) -> Result<(String, T), String> {
        Ok(match n {
            Node::Id => ("id".into(), T::Num),
            Node::Prop(name, _) => {
                let (col, t) = self.column(name)?;
                match t {
                    QType::String => (col, T::Str),
                    QType::Number | QType::Integer => (col, T::Num),
                    QType::Date => (format!("({col}::timestamp AT TIME ZONE 'UTC')"), T::Time),
                }
            }
            Node::Lit(v) => match v {
                Val::Null => ("NULL".into(), T::Other),
                Val::Bool(true) => ("TRUE".into(), T::Other),
                Val::Bool(false) => ("FALSE".into(), T::Other),
                Val::Num(x) => (self.bind(Param::F64(*x)), T::Num),
                Val::Str(s) => (self.bind(Param::Text(s.to_string())), T::Str),
                Val::Time(t) => (self.bind(Param::Time(*t)), T::Time),
                _ => return Err("intervals, lists and geometries are not SQL values here".into()),
            },
            Node::CaseI(a) => (format!("lower({})", self.expr(a)?.0), T::Str),
            Node::Arith(o, a, b) => {
                // float8 throughout, as Rust computes in f64 (no integer division).
                let x = format!("({})::float8", self.expr(a)?.0);
                let y = format!("({})::float8", self.expr(b)?.0);
                let e = match o {
                    Arith::Add => format!("({x} + {y})"),
                    Arith::Sub => format!("({x} - {y})"),
                    Arith::Mul => format!("({x} * {y})"),
                    Arith::Div => format!("({x} / NULLIF({y}, 0))"),
                };
                (e, T::Num)
            }
            Node::Geometry | Node::Spatial(..) | Node::DWithin(_) => {
                return Err("spatial expressions stay on the R-tree".into())
            }
            other => return Err(format!("{other:?} is not a value expression")),
        })
    }

    /// A temporal operand as SQL start and end expressions (an instant is both).
    fn span(&mut self, n: &Node) -> Result<(String, String), String> {
        match n {
            Node::Lit(Val::Interval(s, e)) => {
                let s = match s {
                    Some(t) => self.bind(Param::Time(*t)),
                    None => "'-infinity'::timestamptz".into(),
                };
                let e = match e {
                    Some(t) => self.bind(Param::Time(*t)),
                    None => "'infinity'::timestamptz".into(),
                };
                Ok((s, e))
            }
            other => {
                let (x, t) = self.expr(other)?;
                if t != T::Time && t != T::Other {
                    return Err("temporal operators compare dates, timestamps or intervals".into());
                }
                Ok((x.clone(), x))
            }
        }
    }
}

/// The CQL2 temporal relations over closed intervals, as in [`super::cql`].
fn temporal_sql(op: &str, a_s: &str, a_e: &str, b_s: &str, b_e: &str) -> Result<String, String> {
    Ok(format!(
        "({})",
        match op {
            "t_after" => format!("{a_s} > {b_e}"),
            "t_before" => format!("{a_e} < {b_s}"),
            "t_contains" => format!("{a_s} < {b_s} AND {a_e} > {b_e}"),
            "t_disjoint" => format!("NOT ({a_s} <= {b_e} AND {a_e} >= {b_s})"),
            "t_during" => format!("{a_s} > {b_s} AND {a_e} < {b_e}"),
            "t_equals" => format!("{a_s} = {b_s} AND {a_e} = {b_e}"),
            "t_finishedBy" => format!("{a_s} < {b_s} AND {a_e} = {b_e}"),
            "t_finishes" => format!("{a_s} > {b_s} AND {a_e} = {b_e}"),
            "t_intersects" => format!("{a_s} <= {b_e} AND {a_e} >= {b_s}"),
            "t_meets" => format!("{a_e} = {b_s}"),
            "t_metBy" => format!("{a_s} = {b_e}"),
            "t_overlappedBy" => format!("{a_s} > {b_s} AND {a_s} < {b_e} AND {a_e} > {b_e}"),
            "t_overlaps" => format!("{a_s} < {b_s} AND {a_e} > {b_s} AND {a_e} < {b_e}"),
            "t_startedBy" => format!("{a_s} = {b_s} AND {a_e} > {b_e}"),
            "t_starts" => format!("{a_s} = {b_s} AND {a_e} < {b_e}"),
            other => return Err(format!("temporal operator {other}")),
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_index::SpatialIndex;
    use lifeline_model::crs::MetricCrs;
    use lifeline_model::Role;

    fn q(filter: &str, extra: &[(&str, &str)]) -> Result<ItemsQuery, OgcError> {
        let index = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
        let mut pairs = vec![("filter".to_string(), filter.to_string())];
        pairs.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        super::super::parse_items_query(&pairs, Layer::Pipelines, Role::Analyst, &index)
    }

    #[test]
    fn literals_are_bound_never_written() {
        let hostile = "material = 'x''; DROP TABLE pipelines; --'";
        let s = translate(Layer::Pipelines, &q(hostile, &[]).unwrap()).unwrap();
        assert!(!s.page_sql.contains("DROP"), "{}", s.page_sql);
        assert!(!s.count_sql.contains("DROP"));
        assert_eq!(
            s.params,
            vec![Param::Text("x'; DROP TABLE pipelines; --".into())]
        );
        assert!(s.page_sql.contains("\"material\" COLLATE \"C\" = $1::text"));
    }

    #[test]
    fn sort_and_limits_are_parameters() {
        let s = translate(
            Layer::Pipelines,
            &q(
                "diameter_mm / 0 IS NULL",
                &[
                    ("sortby", "-material,year_built"),
                    ("limit", "5"),
                    ("offset", "7"),
                ],
            )
            .unwrap(),
        )
        .unwrap();
        assert!(s.page_sql.contains("NULLIF"));
        assert!(s
            .page_sql
            .contains("ORDER BY \"material\" COLLATE \"C\" DESC, \"year_built\", id LIMIT $2::int8 OFFSET $3::int8"));
        assert_eq!((s.limit, s.offset), (5, 7));
    }

    #[test]
    fn spatial_and_odd_like_stay_on_the_index() {
        let sp = q("S_INTERSECTS(geometry, POINT(106.5 29.5))", &[]).unwrap();
        assert!(sp.filter.as_ref().unwrap().is_spatial());
        assert!(translate(Layer::Pipelines, &sp).is_err());
        let like = q("material LIKE 'a\\'", &[]).unwrap();
        assert!(translate(Layer::Pipelines, &like).is_err());
        assert_eq!(
            plan(PlanRequest::Auto, Backend::Postgis, Layer::Pipelines, &like).unwrap(),
            Plan::Index
        );
        assert!(plan(
            PlanRequest::Force(Plan::Sql),
            Backend::Postgis,
            Layer::Pipelines,
            &sp
        )
        .is_err());
        let attr = q("kind = 'gas'", &[]).unwrap();
        assert_eq!(
            plan(PlanRequest::Auto, Backend::Postgis, Layer::Pipelines, &attr).unwrap(),
            Plan::Sql
        );
        assert_eq!(
            plan(
                PlanRequest::Auto,
                Backend::Geopackage,
                Layer::Pipelines,
                &attr
            )
            .unwrap(),
            Plan::Index
        );
    }
}
