//! CQL2 filters (OGC API – Features Part 3): parsing with the `cql2` crate under hard limits,
//! compilation into a typed [`Filter`] checked against a collection's queryables, and
//! evaluation over records in Rust. Spatial predicates with a literal geometry give the query
//! a prefilter box for the R-tree; `S_DWITHIN` is answered by the index's metric distance
//! query, so distances are metres in the deployment's projected CRS, never degrees.
//!
//! Semantics follow SQL/PostGIS on the same rows (the test `tests/cql2_postgis.rs` compares
//! both): three-valued logic (a comparison with NULL is unknown, and only `true` selects),
//! spatial predicates on the planar lon/lat geometry as PostGIS `geometry` does, temporal
//! operators on closed intervals with instants as degenerate intervals.

use super::queryables::{QType, Queryable};
use super::OgcError;
use chrono::{DateTime, NaiveDate, Utc};
use cql2::Expr;
use geo::{BoundingRect, Geometry, Relate};
use lifeline_index::SpatialIndex;
use lifeline_model::crs::CANONICAL;
use lifeline_model::{Layer, Record};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;

/// Longest filter accepted, in bytes (a filter is a query, not a data upload).
pub const MAX_FILTER_BYTES: usize = 16 * 1024;
/// Deepest nesting of parentheses, JSON objects or expression nodes.
pub const MAX_DEPTH: usize = 24;
/// Most expression nodes in one filter.
pub const MAX_NODES: usize = 500;
/// Longest IN list.
pub const MAX_LIST: usize = 1000;
/// Most vertices of one geometry literal.
pub const MAX_GEOM_VERTICES: usize = 10_000;
/// Longest string literal.
pub const MAX_STRING: usize = 1024;

/// The filter encodings of Part 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterLang {
    Text,
    Json,
}

impl FilterLang {
    /// Parses the `filter-lang` parameter.
    pub fn parse(s: &str) -> Result<Self, OgcError> {
        match s {
            "cql2-text" => Ok(FilterLang::Text),
            "cql2-json" => Ok(FilterLang::Json),
            other => Err(OgcError::bad(format!(
                "filter-lang '{}' is not supported; use cql2-text or cql2-json",
                clip(other)
            ))),
        }
    }
}

/// A compiled filter: typed, checked against queryables, ready to evaluate.
#[derive(Debug)]
pub struct Filter {
    pub(crate) root: Node,
    /// A lon/lat box every match must meet (from top-level spatial predicates), if any.
    pub prefilter: Option<geo::Rect<f64>>,
}

/// A value during evaluation; strings and geometries are borrowed from the filter's
/// literals or the record where possible, so evaluation allocates little.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An instant, at second (or finer) precision; dates are midnight UTC.
    Time(DateTime<Utc>),
    /// A closed interval; `None` is an open end (`..`).
    Interval(Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    Geom(Cow<'a, Geometry<f64>>),
    List(Vec<Val<'a>>),
}

impl Val<'_> {
    /// A copy borrowing this value's strings and geometries.
    fn borrowed(&self) -> Val<'_> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(*b),
            Val::Num(n) => Val::Num(*n),
            Val::Str(s) => Val::Str(Cow::Borrowed(s.as_ref())),
            Val::Time(t) => Val::Time(*t),
            Val::Interval(a, b) => Val::Interval(*a, *b),
            Val::Geom(g) => Val::Geom(Cow::Borrowed(g.as_ref())),
            Val::List(v) => Val::List(v.iter().map(Val::borrowed).collect()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    Like(Box<Node>, Box<Node>),
    Between(Box<Node>, Box<Node>, Box<Node>),
    In(Box<Node>, Vec<Node>),
    IsNull(Box<Node>),
    Spatial(String, Box<Node>, Box<Node>),
    /// `S_DWITHIN(geometry, literal, metres)`, answered by the index up front.
    DWithin(HashSet<i64>),
    Temporal(String, Box<Node>, Box<Node>),
    Arith(Arith, Box<Node>, Box<Node>),
    CaseI(Box<Node>),
    Prop(&'static str, QType),
    Id,
    Geometry,
    Lit(Val<'static>),
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Cheap structural limits checked before the parser sees the text, so hostile input
/// (deep nesting, huge literals) is refused without recursing on it.
fn precheck_text(s: &str) -> Result<(), OgcError> {
    if s.len() > MAX_FILTER_BYTES {
        return Err(OgcError::bad(format!(
            "filter is longer than {MAX_FILTER_BYTES} bytes"
        )));
    }
    let mut depth = 0usize;
    let mut in_str = false;
    let mut nots = 0usize;
    let lower = s.to_ascii_lowercase();
    for (i, c) in lower.char_indices() {
        match c {
            '\'' => in_str = !in_str,
            '(' | '[' if !in_str => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(OgcError::bad(format!(
                        "filter nests deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            ')' | ']' if !in_str => depth = depth.saturating_sub(1),
            'n' if !in_str && lower[i..].starts_with("not") => {
                nots += 1;
                if nots > MAX_DEPTH {
                    return Err(OgcError::bad(format!(
                        "filter has more than {MAX_DEPTH} NOT operators"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Parses a filter in either encoding into the `cql2` AST, within the limits.
pub fn parse(s: &str, lang: FilterLang) -> Result<Expr, OgcError> {
    match lang {
        FilterLang::Text => {
            precheck_text(s)?;
            cql2::parse_text(s).map_err(|e| {
                OgcError::bad(format!(
                    "filter is not valid cql2-text: {}",
                    clip_err(&e.to_string())
                ))
            })
        }
        FilterLang::Json => {
            if s.len() > MAX_FILTER_BYTES {
                return Err(OgcError::bad(format!(
                    "filter is longer than {MAX_FILTER_BYTES} bytes"
                )));
            }
            let v: Value = serde_json::from_str(s)
                .map_err(|e| OgcError::bad(format!("filter is not valid JSON: {e}")))?;
            // Geometry coordinates add up to 4 levels of arrays.
            if json_depth(&v) > 2 * MAX_DEPTH + 4 {
                return Err(OgcError::bad(format!(
                    "filter nests deeper than {MAX_DEPTH} levels"
                )));
            }
            Expr::try_from(v).map_err(|e| {
                OgcError::bad(format!(
                    "filter is not valid cql2-json: {}",
                    clip_err(&e.to_string())
                ))
            })
        }
    }
}

fn clip_err(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Compiles a parsed filter against a collection's queryables. `filter_crs` is the CRS of
/// geometry literals (`EPSG:xxxx`, axis order already normalised by the caller's choice of
/// `swap`), `index` answers `S_DWITHIN`.
pub struct Compiler<'a> {
    pub layer: Layer,
    pub queryables: &'a [Queryable],
    pub filter_crs: Option<(&'a str, bool)>,
    pub index: &'a SpatialIndex,
    nodes: usize,
}

impl<'a> Compiler<'a> {
    /// A compiler for one collection.
    pub fn new(
        layer: Layer,
        queryables: &'a [Queryable],
        filter_crs: Option<(&'a str, bool)>,
        index: &'a SpatialIndex,
    ) -> Self {
        Compiler {
            layer,
            queryables,
            filter_crs,
            index,
            nodes: 0,
        }
    }

    /// Compiles the whole expression; it must be a predicate.
    pub fn compile(mut self, e: &Expr) -> Result<Filter, OgcError> {
        let root = self.node(e, 0)?;
        if !is_predicate(&root) {
            return Err(OgcError::bad(
                "filter must be a predicate (a comparison, spatial, temporal or logical expression)",
            ));
        }
        let prefilter = prefilter_of(&root);
        Ok(Filter { root, prefilter })
    }

    fn node(&mut self, e: &Expr, depth: usize) -> Result<Node, OgcError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(OgcError::bad(format!(
                "filter has more than {MAX_NODES} terms"
            )));
        }
        if depth > MAX_DEPTH {
            return Err(OgcError::bad(format!(
                "filter nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(match e {
            Expr::Null => Node::Lit(Val::Null),
            Expr::Bool(b) => Node::Lit(Val::Bool(*b)),
            Expr::Float(f) => {
                if !f.is_finite() {
                    return Err(OgcError::bad("a number in the filter is not finite"));
                }
                Node::Lit(Val::Num(*f))
            }
            Expr::Literal(s) => {
                if s.chars().count() > MAX_STRING {
                    return Err(OgcError::bad(format!(
                        "a string in the filter is longer than {MAX_STRING} characters"
                    )));
                }
                Node::Lit(Val::Str(Cow::Owned(s.clone())))
            }
            Expr::Property { property } => self.property(property)?,
            Expr::Date { date } => Node::Lit(Val::Time(instant(date, true)?)),
            Expr::Timestamp { timestamp } => Node::Lit(Val::Time(instant(timestamp, false)?)),
            Expr::Interval { interval } => {
                if interval.len() != 2 {
                    return Err(OgcError::bad("INTERVAL takes exactly two bounds"));
                }
                let b = |x: &Expr| -> Result<Option<DateTime<Utc>>, OgcError> {
                    match x {
                        Expr::Literal(s) if s == ".." => Ok(None),
                        Expr::Date { date } => instant(date, true).map(Some),
                        Expr::Timestamp { timestamp } => instant(timestamp, false).map(Some),
                        Expr::Literal(s) => parse_instant(s).map(Some),
                        _ => Err(OgcError::bad(
                            "INTERVAL bounds must be dates, timestamps or '..' (property bounds are not supported)",
                        )),
                    }
                };
                let (s, en) = (b(&interval[0])?, b(&interval[1])?);
                if let (Some(s), Some(en)) = (s, en) {
                    if s > en {
                        return Err(OgcError::bad("INTERVAL start is after its end"));
                    }
                }
                Node::Lit(Val::Interval(s, en))
            }
            Expr::Geometry(_) | Expr::BBox { .. } => {
                Node::Lit(Val::Geom(Cow::Owned(self.geometry(e)?)))
            }
            Expr::Array(items) => {
                if items.len() > MAX_LIST {
                    return Err(OgcError::bad(format!(
                        "a list in the filter has more than {MAX_LIST} items"
                    )));
                }
                let mut vals = Vec::with_capacity(items.len());
                for i in items {
                    match self.node(i, depth + 1)? {
                        Node::Lit(v) => vals.push(v),
                        _ => return Err(OgcError::bad("list items must be literals")),
                    }
                }
                Node::Lit(Val::List(vals))
            }
            Expr::Operation { op, args } => self.operation(op, args, depth)?,
        })
    }

    fn property(&self, name: &str) -> Result<Node, OgcError> {
        if name == "id" {
            return Ok(Node::Id);
        }
        if name == "geometry" || name == "geom" || name == "location" {
            return Ok(Node::Geometry);
        }
        match self.queryables.iter().find(|q| q.name == name) {
            Some(q) => Ok(Node::Prop(q.name, q.qtype)),
            None => Err(OgcError::bad(format!(
                "'{}' is not a queryable of {}; see /ogc/collections/{}/queryables",
                clip(name),
                self.layer,
                self.layer
            ))),
        }
    }

    fn geometry(&self, e: &Expr) -> Result<Geometry<f64>, OgcError> {
        strict_literal(e)?;
        let g: geo_types::Geometry<f64> =
            geo_types::Geometry::try_from(e.clone()).map_err(|err| {
                OgcError::bad(format!(
                    "bad geometry literal in the filter: {}",
                    clip_err(&err.to_string())
                ))
            })?;
        let mut n = 0usize;
        let mut finite = true;
        use geo::CoordsIter;
        for c in g.coords_iter() {
            n += 1;
            finite &= c.x.is_finite() && c.y.is_finite();
        }
        if n > MAX_GEOM_VERTICES {
            return Err(OgcError::bad(format!(
                "a geometry literal has more than {MAX_GEOM_VERTICES} vertices"
            )));
        }
        if !finite {
            return Err(OgcError::bad(
                "a geometry literal has a non-finite coordinate",
            ));
        }
        {
            use geo::algorithm::Validation;
            if let Err(e) = g.check_validation() {
                return Err(OgcError::bad(format!(
                    "invalid geometry literal in the filter: {}",
                    clip_err(&e.to_string())
                )));
            }
        }
        let g = match self.filter_crs {
            Some((code, swap)) if code != CANONICAL => {
                let g = if swap { super::crs::swap_xy(&g) } else { g };
                lifeline_model::crs::transform(&g, code, CANONICAL)
                    .map_err(|e| OgcError::bad(format!("filter-crs: {e}")))?
            }
            Some((_, true)) => super::crs::swap_xy(&g),
            _ => g,
        };
        // The same range rule as `bbox=`: lon/lat inside -180..180, -90..90.
        if let Some(c) = g
            .coords_iter()
            .find(|c| !(-180.0..=180.0).contains(&c.x) || !(-90.0..=90.0).contains(&c.y))
        {
            return Err(OgcError::bad(format!(
                "a geometry literal has the coordinate ({}, {}) outside longitude -180..180, latitude -90..90",
                c.x, c.y
            )));
        }
        Ok(g)
    }

    fn operation(&mut self, op: &str, args: &[Box<Expr>], depth: usize) -> Result<Node, OgcError> {
        let op_l = op.to_ascii_lowercase();
        let arity = |n: usize| -> Result<(), OgcError> {
            if args.len() != n {
                Err(OgcError::bad(format!(
                    "operator '{}' takes {n} arguments, got {}",
                    clip(op),
                    args.len()
                )))
            } else {
                Ok(())
            }
        };
        let sub = |s: &mut Self, i: usize| s.node(&args[i], depth + 1);
        Ok(match op_l.as_str() {
            "and" | "or" => {
                if args.is_empty() {
                    return Err(OgcError::bad(format!("'{op}' needs arguments")));
                }
                let mut v = Vec::with_capacity(args.len());
                for i in 0..args.len() {
                    let n = sub(self, i)?;
                    need_predicate(&n, op)?;
                    v.push(n);
                }
                if op_l == "and" {
                    Node::And(v)
                } else {
                    Node::Or(v)
                }
            }
            "not" => {
                arity(1)?;
                let n = sub(self, 0)?;
                need_predicate(&n, op)?;
                Node::Not(Box::new(n))
            }
            "=" | "<>" | "<" | "<=" | ">" | ">=" => {
                arity(2)?;
                let (a, b) = (sub(self, 0)?, sub(self, 1)?);
                check_comparable(&a, &b)?;
                let c = match op_l.as_str() {
                    "=" => Cmp::Eq,
                    "<>" => Cmp::Ne,
                    "<" => Cmp::Lt,
                    "<=" => Cmp::Le,
                    ">" => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                Node::Cmp(c, Box::new(a), Box::new(b))
            }
            "like" => {
                arity(2)?;
                let (a, b) = (sub(self, 0)?, sub(self, 1)?);
                for n in [&a, &b] {
                    if !matches!(kind_of(n), K::Str | K::Unknown) {
                        return Err(OgcError::bad("LIKE compares strings"));
                    }
                }
                Node::Like(Box::new(a), Box::new(b))
            }
            "between" => {
                arity(3)?;
                let (a, lo, hi) = (sub(self, 0)?, sub(self, 1)?, sub(self, 2)?);
                check_comparable(&a, &lo)?;
                check_comparable(&a, &hi)?;
                Node::Between(Box::new(a), Box::new(lo), Box::new(hi))
            }
            "in" => {
                arity(2)?;
                let a = sub(self, 0)?;
                let list = match sub(self, 1)? {
                    Node::Lit(Val::List(v)) => v.into_iter().map(Node::Lit).collect::<Vec<_>>(),
                    _ => return Err(OgcError::bad("IN needs a list of literals")),
                };
                for n in &list {
                    check_comparable(&a, n)?;
                }
                Node::In(Box::new(a), list)
            }
            "isnull" => {
                arity(1)?;
                Node::IsNull(Box::new(sub(self, 0)?))
            }
            "casei" | "lower" => {
                arity(1)?;
                let a = sub(self, 0)?;
                if !matches!(kind_of(&a), K::Str | K::Unknown) {
                    return Err(OgcError::bad("CASEI applies to strings"));
                }
                Node::CaseI(Box::new(a))
            }
            "accenti" => {
                return Err(OgcError::bad(
                    "ACCENTI is not supported (conformance class accent-insensitive-comparison is not declared)",
                ))
            }
            "+" | "-" | "*" | "/" => {
                arity(2)?;
                let (a, b) = (sub(self, 0)?, sub(self, 1)?);
                for n in [&a, &b] {
                    if !matches!(kind_of(n), K::Num | K::Unknown) {
                        return Err(OgcError::bad("arithmetic needs numbers"));
                    }
                }
                let o = match op_l.as_str() {
                    "+" => Arith::Add,
                    "-" => Arith::Sub,
                    "*" => Arith::Mul,
                    _ => Arith::Div,
                };
                Node::Arith(o, Box::new(a), Box::new(b))
            }
            "s_dwithin" => {
                arity(3)?;
                let a = sub(self, 0)?;
                let b = sub(self, 1)?;
                let d = sub(self, 2)?;
                let (Node::Geometry, Node::Lit(Val::Geom(g)), Node::Lit(Val::Num(d))) = (&a, &b, &d)
                else {
                    return Err(OgcError::bad(
                        "S_DWITHIN takes (geometry, geometry literal, distance in metres)",
                    ));
                };
                let hits = self
                    .index
                    .within_distance(self.layer, g, *d)
                    .map_err(|e| OgcError::bad(format!("S_DWITHIN: {e}")))?;
                Node::DWithin(hits.into_iter().map(|h| h.record.id()).collect())
            }
            s if s.starts_with("s_") && cql2::SPATIALOPS.contains(&s) => {
                arity(2)?;
                let (a, b) = (sub(self, 0)?, sub(self, 1)?);
                for n in [&a, &b] {
                    if !matches!(n, Node::Geometry | Node::Lit(Val::Geom(_))) {
                        return Err(OgcError::bad(format!(
                            "{} compares geometries (the geometry property or a literal)",
                            op.to_uppercase()
                        )));
                    }
                }
                Node::Spatial(s.to_string(), Box::new(a), Box::new(b))
            }
            s if s.starts_with("t_") => {
                let canonical = cql2::TEMPORALOPS
                    .iter()
                    .find(|t| t.eq_ignore_ascii_case(s))
                    .ok_or_else(|| OgcError::bad(format!("unknown temporal operator '{}'", clip(op))))?;
                arity(2)?;
                let (a, b) = (sub(self, 0)?, sub(self, 1)?);
                for n in [&a, &b] {
                    if !matches!(kind_of(n), K::Time | K::Unknown) {
                        return Err(OgcError::bad(format!(
                            "{} compares dates, timestamps or intervals",
                            op.to_uppercase()
                        )));
                    }
                }
                Node::Temporal(canonical.to_string(), Box::new(a), Box::new(b))
            }
            _ => {
                return Err(OgcError::bad(format!(
                    "operator or function '{}' is not supported",
                    clip(op)
                )))
            }
        })
    }
}

/// Type classes for the compile-time check that both sides of a comparison agree.
#[derive(Debug, PartialEq, Clone, Copy)]
enum K {
    Num,
    Str,
    Bool,
    Time,
    Geom,
    List,
    Unknown,
}

fn kind_of(n: &Node) -> K {
    match n {
        Node::Lit(Val::Num(_)) | Node::Id | Node::Arith(..) => K::Num,
        Node::Lit(Val::Str(_)) | Node::CaseI(_) => K::Str,
        Node::Lit(Val::Bool(_)) => K::Bool,
        Node::Lit(Val::Time(_)) | Node::Lit(Val::Interval(..)) => K::Time,
        Node::Lit(Val::Geom(_)) | Node::Geometry => K::Geom,
        Node::Lit(Val::List(_)) => K::List,
        Node::Prop(_, t) => match t {
            QType::Number | QType::Integer => K::Num,
            QType::String => K::Str,
            QType::Date => K::Time,
        },
        Node::Lit(Val::Null) => K::Unknown,
        _ => K::Bool,
    }
}

fn is_predicate(n: &Node) -> bool {
    matches!(
        n,
        Node::And(_)
            | Node::Or(_)
            | Node::Not(_)
            | Node::Cmp(..)
            | Node::Like(..)
            | Node::Between(..)
            | Node::In(..)
            | Node::IsNull(_)
            | Node::Spatial(..)
            | Node::DWithin(_)
            | Node::Temporal(..)
            | Node::Lit(Val::Bool(_))
    )
}

fn need_predicate(n: &Node, op: &str) -> Result<(), OgcError> {
    if is_predicate(n) {
        Ok(())
    } else {
        Err(OgcError::bad(format!(
            "the arguments of '{op}' must be predicates"
        )))
    }
}

fn check_comparable(a: &Node, b: &Node) -> Result<(), OgcError> {
    let (ka, kb) = (kind_of(a), kind_of(b));
    if ka == K::Unknown || kb == K::Unknown || ka == kb {
        if ka == K::Geom || ka == K::List {
            return Err(OgcError::bad(
                "geometries and lists cannot be compared with =, <, >; use the S_ or A_ operators",
            ));
        }
        return Ok(());
    }
    Err(OgcError::bad(format!(
        "cannot compare a {ka:?} with a {kb:?}"
    )))
}

fn instant(e: &Expr, is_date: bool) -> Result<DateTime<Utc>, OgcError> {
    let Expr::Literal(s) = e else {
        return Err(OgcError::bad("DATE and TIMESTAMP take a string literal"));
    };
    if is_date {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| OgcError::bad(format!("'{}' is not a date (YYYY-MM-DD)", clip(s))))?;
        Ok(midnight(d))
    } else {
        parse_instant(s)
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Parses an RFC 3339 timestamp or a plain date.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, OgcError> {
    // RFC 3339 years are exactly four digits: chrono's own parsers would also take a sign
    // or more digits (`-9999-01-01`, `+10000-…`).
    if s.len() < 10 || !s.as_bytes()[..4].iter().all(u8::is_ascii_digit) || s.as_bytes()[4] != b'-'
    {
        return Err(OgcError::bad(format!(
            "'{}' is not an RFC 3339 timestamp or a date (YYYY-MM-DD…)",
            clip(s)
        )));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(d) = (s.len() == 10)
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
    {
        return Ok(midnight(d));
    }
    Err(OgcError::bad(format!(
        "'{}' is not an RFC 3339 timestamp or a date",
        clip(s)
    )))
}

/// Refuses what converting a literal to `geo` would silently repair, by the rules `bbox=`
/// and GeoJSON input follow everywhere else: a `BBOX` whose minimum exceeds its maximum
/// (west of east, or south of north; boxes across the antimeridian are not supported) is
/// not swapped, and a polygon ring whose last position differs from its first is not
/// closed (GeoJSON, RFC 7946 §3.1.6, and WKT require closed rings).
fn strict_literal(e: &Expr) -> Result<(), OgcError> {
    match e {
        Expr::BBox { bbox } => {
            let n: Vec<f64> = bbox
                .iter()
                .map(|v| f64::try_from(v.as_ref().clone()).ok())
                .collect::<Option<_>>()
                .ok_or_else(|| OgcError::bad("BBOX takes numbers"))?;
            let [x0, y0, x1, y1] = match n.as_slice() {
                [a, b, c, d] | [a, b, _, c, d, _] => [*a, *b, *c, *d],
                _ => return Err(OgcError::bad("BBOX takes 4 (or 6) numbers")),
            };
            if x0 > x1 || y0 > y1 {
                return Err(OgcError::bad(format!(
                    "BBOX({x0}, {y0}, {x1}, {y1}): the minimum is greater than the maximum (expected BBOX(minLon, minLat, maxLon, maxLat); boxes across the antimeridian are not supported)"
                )));
            }
            Ok(())
        }
        Expr::Geometry(g) => {
            let v = serde_json::to_value(g)
                .map_err(|e| OgcError::bad(format!("bad geometry literal in the filter: {e}")))?;
            closed_rings(&v)
        }
        _ => Ok(()),
    }
}

/// Checks every polygon ring of a GeoJSON geometry value is closed.
fn closed_rings(v: &Value) -> Result<(), OgcError> {
    let rings_of_polygon = |p: &Value| -> Result<(), OgcError> {
        for ring in p.as_array().into_iter().flatten() {
            let pts = ring.as_array().map(Vec::as_slice).unwrap_or_default();
            if pts.first() != pts.last() {
                return Err(OgcError::bad(format!(
                    "a polygon ring in the filter is not closed: it starts at {} and ends at {} (the last position must repeat the first)",
                    pts.first().unwrap_or(&Value::Null),
                    pts.last().unwrap_or(&Value::Null)
                )));
            }
        }
        Ok(())
    };
    match v["type"].as_str() {
        Some("Polygon") => rings_of_polygon(&v["coordinates"]),
        Some("MultiPolygon") => v["coordinates"]
            .as_array()
            .into_iter()
            .flatten()
            .try_for_each(rings_of_polygon),
        Some("GeometryCollection") => v["geometries"]
            .as_array()
            .into_iter()
            .flatten()
            .try_for_each(closed_rings),
        _ => Ok(()),
    }
}

/// The box of the top-level spatial predicates with a literal (AND-ed), if any: every match
/// must meet it, so the R-tree can narrow the candidates first.
fn prefilter_of(n: &Node) -> Option<geo::Rect<f64>> {
    match n {
        Node::Spatial(op, a, b)
            if matches!(
                op.as_str(),
                "s_intersects"
                    | "s_within"
                    | "s_equals"
                    | "s_touches"
                    | "s_overlaps"
                    | "s_crosses"
                    | "s_contains"
            ) =>
        {
            match (&**a, &**b) {
                (Node::Geometry, Node::Lit(Val::Geom(g)))
                | (Node::Lit(Val::Geom(g)), Node::Geometry) => g.bounding_rect(),
                _ => None,
            }
        }
        Node::And(v) => v.iter().find_map(prefilter_of),
        _ => None,
    }
}

impl Filter {
    /// Whether the record matches (only a definite `true` selects). The record is read
    /// typed; the compiler has already limited property names to the caller's queryables.
    pub fn matches(&self, record: &Record) -> bool {
        matches!(eval(&self.root, record), Val::Bool(true))
    }

    /// Whether the filter has a spatial predicate (then the R-tree path is the fast one).
    pub fn is_spatial(&self) -> bool {
        fn walk(n: &Node) -> bool {
            match n {
                Node::Spatial(..) | Node::DWithin(_) | Node::Geometry => true,
                Node::And(v) | Node::Or(v) => v.iter().any(walk),
                Node::Not(a) | Node::IsNull(a) | Node::CaseI(a) => walk(a),
                Node::Cmp(_, a, b)
                | Node::Like(a, b)
                | Node::Temporal(_, a, b)
                | Node::Arith(_, a, b) => walk(a) || walk(b),
                Node::Between(a, b, c) => walk(a) || walk(b) || walk(c),
                Node::In(a, l) => walk(a) || l.iter().any(walk),
                Node::Prop(..) | Node::Id | Node::Lit(_) => false,
            }
        }
        walk(&self.root)
    }
}

fn prop_val<'a>(record: &'a Record, name: &str, t: QType) -> Val<'a> {
    use super::fields::Field;
    match super::fields::field(record, name) {
        Field::Null => Val::Null,
        Field::Str(s) => {
            if t == QType::Date {
                parse_instant(s).map(Val::Time).unwrap_or(Val::Null)
            } else {
                Val::Str(Cow::Borrowed(s))
            }
        }
        Field::F64(f) => Val::Num(f),
        Field::I64(i) => Val::Num(i as f64),
        Field::Date(d) => Val::Time(midnight(d)),
    }
}

fn truth(b: Option<bool>) -> Val<'static> {
    b.map(Val::Bool).unwrap_or(Val::Null)
}

fn eval<'a>(n: &'a Node, item: &'a Record) -> Val<'a> {
    match n {
        Node::Lit(v) => v.borrowed(),
        Node::Id => Val::Num(item.id() as f64),
        Node::Prop(name, t) => prop_val(item, name, *t),
        Node::Geometry => item
            .geometry()
            .map(|g| Val::Geom(Cow::Owned(g)))
            .unwrap_or(Val::Null),
        Node::And(v) => {
            let mut unknown = false;
            for c in v {
                match eval(c, item) {
                    Val::Bool(false) => return Val::Bool(false),
                    Val::Bool(true) => {}
                    _ => unknown = true,
                }
            }
            if unknown {
                Val::Null
            } else {
                Val::Bool(true)
            }
        }
        Node::Or(v) => {
            let mut unknown = false;
            for c in v {
                match eval(c, item) {
                    Val::Bool(true) => return Val::Bool(true),
                    Val::Bool(false) => {}
                    _ => unknown = true,
                }
            }
            if unknown {
                Val::Null
            } else {
                Val::Bool(false)
            }
        }
        Node::Not(c) => match eval(c, item) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Null,
        },
        Node::Cmp(c, a, b) => truth(compare(&eval(a, item), &eval(b, item)).map(|o| match c {
            Cmp::Eq => o.is_eq(),
            Cmp::Ne => o.is_ne(),
            Cmp::Lt => o.is_lt(),
            Cmp::Le => o.is_le(),
            Cmp::Gt => o.is_gt(),
            Cmp::Ge => o.is_ge(),
        })),
        Node::Like(a, p) => match (eval(a, item), eval(p, item)) {
            (Val::Str(s), Val::Str(p)) => Val::Bool(like(&s, &p)),
            _ => Val::Null,
        },
        Node::Between(a, lo, hi) => {
            let v = eval(a, item);
            let l = compare(&v, &eval(lo, item));
            let h = compare(&v, &eval(hi, item));
            match (l, h) {
                (Some(l), Some(h)) => Val::Bool(l.is_ge() && h.is_le()),
                // SQL: x BETWEEN a AND b is x >= a AND x <= b, three-valued.
                (Some(l), None) if l.is_lt() => Val::Bool(false),
                (None, Some(h)) if h.is_gt() => Val::Bool(false),
                _ => Val::Null,
            }
        }
        Node::In(a, list) => {
            let v = eval(a, item);
            if v == Val::Null {
                return Val::Null;
            }
            let mut unknown = false;
            for x in list {
                match compare(&v, &eval(x, item)) {
                    Some(o) if o.is_eq() => return Val::Bool(true),
                    Some(_) => {}
                    None => unknown = true,
                }
            }
            if unknown {
                Val::Null
            } else {
                Val::Bool(false)
            }
        }
        Node::IsNull(a) => Val::Bool(eval(a, item) == Val::Null),
        Node::CaseI(a) => match eval(a, item) {
            Val::Str(s) => Val::Str(Cow::Owned(s.to_lowercase())),
            other => other,
        },
        Node::Arith(o, a, b) => match (eval(a, item), eval(b, item)) {
            (Val::Num(x), Val::Num(y)) => {
                let r = match o {
                    Arith::Add => x + y,
                    Arith::Sub => x - y,
                    Arith::Mul => x * y,
                    Arith::Div => {
                        if y == 0.0 {
                            return Val::Null;
                        }
                        x / y
                    }
                };
                Val::Num(r)
            }
            _ => Val::Null,
        },
        Node::DWithin(ids) => Val::Bool(ids.contains(&item.id())),
        Node::Spatial(op, a, b) => match (eval(a, item), eval(b, item)) {
            (Val::Geom(x), Val::Geom(y)) => {
                let m = x.relate(y.as_ref());
                Val::Bool(match op.as_str() {
                    "s_intersects" => m.is_intersects(),
                    "s_disjoint" => m.is_disjoint(),
                    "s_equals" => m.is_equal_topo(),
                    "s_touches" => m.is_touches(),
                    "s_within" => m.is_within(),
                    "s_overlaps" => m.is_overlaps(),
                    "s_crosses" => m.is_crosses(),
                    "s_contains" => m.is_contains(),
                    _ => return Val::Null,
                })
            }
            _ => Val::Null,
        },
        Node::Temporal(op, a, b) => {
            let (Some((as_, ae)), Some((bs, be))) = (span(&eval(a, item)), span(&eval(b, item)))
            else {
                return Val::Null;
            };
            truth(temporal(op, as_, ae, bs, be))
        }
    }
}

/// A temporal value as a closed interval, open ends as the extreme instants.
fn span(v: &Val<'_>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match v {
        Val::Time(t) => Some((*t, *t)),
        Val::Interval(s, e) => Some((
            s.unwrap_or(DateTime::<Utc>::MIN_UTC),
            e.unwrap_or(DateTime::<Utc>::MAX_UTC),
        )),
        _ => None,
    }
}

/// The CQL2 temporal relations (Allen's interval algebra, §6.3 of the standard).
fn temporal(
    op: &str,
    a_s: DateTime<Utc>,
    a_e: DateTime<Utc>,
    b_s: DateTime<Utc>,
    b_e: DateTime<Utc>,
) -> Option<bool> {
    Some(match op {
        "t_after" => a_s > b_e,
        "t_before" => a_e < b_s,
        "t_contains" => a_s < b_s && a_e > b_e,
        "t_disjoint" => !(a_s <= b_e && a_e >= b_s),
        "t_during" => a_s > b_s && a_e < b_e,
        "t_equals" => a_s == b_s && a_e == b_e,
        "t_finishedBy" => a_s < b_s && a_e == b_e,
        "t_finishes" => a_s > b_s && a_e == b_e,
        "t_intersects" => a_s <= b_e && a_e >= b_s,
        "t_meets" => a_e == b_s,
        "t_metBy" => a_s == b_e,
        "t_overlappedBy" => a_s > b_s && a_s < b_e && a_e > b_e,
        "t_overlaps" => a_s < b_s && a_e > b_s && a_e < b_e,
        "t_startedBy" => a_s == b_s && a_e > b_e,
        "t_starts" => a_s == b_s && a_e < b_e,
        _ => return None,
    })
}

fn compare(a: &Val<'_>, b: &Val<'_>) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes the next character.
pub fn like(s: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        Any,
        One,
        Ch(char),
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        toks.push(match c {
            '%' => T::Any,
            '_' => T::One,
            '\\' => T::Ch(it.next().unwrap_or('\\')),
            c => T::Ch(c),
        });
    }
    let s: Vec<char> = s.chars().collect();
    // Iterative matcher with backtracking to the last `%`: O(n·m) worst case, no recursion.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if j < toks.len() && (toks[j] == T::One || toks[j] == T::Ch(s[i])) {
            i += 1;
            j += 1;
        } else if j < toks.len() && toks[j] == T::Any {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    while j < toks.len() && toks[j] == T::Any {
        j += 1;
    }
    j == toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_sql() {
        assert!(like("ductile iron", "duct%"));
        assert!(like("ductile iron", "%iron"));
        assert!(like("PE", "P_"));
        assert!(!like("PE100", "P_"));
        assert!(like("a%b", "a\\%b"));
        assert!(!like("axb", "a\\%b"));
        assert!(like("", "%"));
        assert!(like("abcabc", "%abc"));
    }

    #[test]
    fn prechecks_refuse_hostile_text() {
        let deep = format!("{}a=1{}", "(".repeat(1000), ")".repeat(1000));
        assert!(parse(&deep, FilterLang::Text).is_err());
        let nots = format!("{} a=1", "NOT ".repeat(500));
        assert!(parse(&nots, FilterLang::Text).is_err());
        let huge = format!("a = '{}'", "x".repeat(100_000));
        assert!(parse(&huge, FilterLang::Text).is_err());
        let mut deep_json = String::from("true");
        for _ in 0..200 {
            deep_json = format!("{{\"op\":\"not\",\"args\":[{deep_json}]}}");
        }
        assert!(parse(&deep_json, FilterLang::Json).is_err());
    }

    #[test]
    fn temporal_relations() {
        let d = |s: &str| parse_instant(s).unwrap();
        let (a, b, c) = (d("2020-01-01"), d("2021-01-01"), d("2022-01-01"));
        assert_eq!(temporal("t_before", a, a, b, c), Some(true));
        assert_eq!(temporal("t_during", b, b, a, c), Some(true));
        assert_eq!(temporal("t_intersects", a, b, b, c), Some(true));
        assert_eq!(temporal("t_meets", a, b, b, c), Some(true));
        assert_eq!(temporal("t_overlaps", a, c, b, c), Some(false));
    }
}
