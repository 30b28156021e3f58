//! HTML views of the OGC API for people with a browser: the landing page, conformance,
//! collections, one collection, an items page (a table, with next/previous links) and one
//! feature. Served for `f=html`, or when the `Accept` header asks for `text/html` and no
//! `f` is given. Plain HTML with an inline style sheet and no external assets (no scripts,
//! fonts or map tiles), so it works offline and behind strict proxies. Every value from data
//! or the request is escaped.

use super::fields::{field, Field};
use axum::http::HeaderMap;
use lifeline_model::Record;
use serde_json::Value;
use std::fmt::Write;

/// Whether the response should be HTML: `f=html`, or no `f` and an `Accept` header that
/// names `text/html` (browsers); GDAL, OWSLib and test suites ask for JSON or `*/*`.
pub fn wants_html(headers: &HeaderMap, f: Option<&str>) -> bool {
    match f {
        Some(f) => f == "html",
        None => headers
            .get(axum::http::header::ACCEPT)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|a| a.contains("text/html")),
    }
}

pub use lifeline_model::html::esc;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:70rem;padding:0 1rem;color:#222}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.5rem}table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}\
nav a{margin-right:1rem}code{background:#f3f3f3;padding:0 .2rem}.muted{color:#666}";

/// Wraps a body in a page with a title and the navigation bar.
pub fn page(base: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{t}</title><style>{STYLE}</style></head><body>\
<nav><a href=\"{b}/?f=html\">Home</a><a href=\"{b}/collections?f=html\">Collections</a><a href=\"{b}/conformance?f=html\">Conformance</a><a href=\"{b}/api\">OpenAPI (JSON)</a></nav>\
<h1>{t}</h1>{body}</body></html>\n",
        t = esc(title),
        b = esc(base),
    )
}

/// A list of links (`href`, `rel`, `type`, `title`) as a table.
pub fn links_table(links: &Value) -> String {
    let mut o = String::from("<table><tr><th>rel</th><th>link</th><th>type</th></tr>");
    for l in links.as_array().into_iter().flatten() {
        let s = |k: &str| esc(l[k].as_str().unwrap_or(""));
        let _ = write!(
            o,
            "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td></tr>",
            s("rel"),
            s("href"),
            if l["title"].is_string() {
                s("title")
            } else {
                s("href")
            },
            s("type")
        );
    }
    o.push_str("</table>");
    o
}

/// The landing page.
pub fn landing(base: &str, doc: &Value) -> String {
    let body = format!(
        "<p>{}</p><ul><li><a href=\"{b}/collections?f=html\">Feature collections</a></li>\
<li><a href=\"{b}/conformance?f=html\">Conformance classes</a></li>\
<li><a href=\"{b}/api\">API definition (OpenAPI 3.0, JSON)</a></li></ul><h2>Links</h2>{}",
        esc(doc["description"].as_str().unwrap_or("")),
        links_table(&doc["links"]),
        b = esc(base)
    );
    page(base, doc["title"].as_str().unwrap_or("OGC API"), &body)
}

/// The conformance classes.
pub fn conformance(base: &str, classes: &[&str]) -> String {
    let mut body = String::from("<ul>");
    for c in classes {
        let _ = write!(body, "<li><code>{}</code></li>", esc(c));
    }
    body.push_str("</ul>");
    page(base, "Conformance", &body)
}

fn collection_row(c: &Value) -> String {
    let id = esc(c["id"].as_str().unwrap_or(""));
    format!(
        "<tr><td><a href=\"collections/{id}?f=html\">{}</a></td><td>{}</td><td><a href=\"collections/{id}/items?f=html\">items</a> · <a href=\"collections/{id}/queryables\">queryables</a></td></tr>",
        esc(c["title"].as_str().unwrap_or("")),
        esc(c["description"].as_str().unwrap_or("")),
    )
}

/// The collections the caller may read.
pub fn collections(base: &str, cols: &[Value]) -> String {
    let mut body =
        String::from("<table><tr><th>collection</th><th>description</th><th>resources</th></tr>");
    for c in cols {
        body.push_str(&collection_row(c));
    }
    body.push_str("</table>");
    // Relative links above resolve against /ogc/collections; make them absolute instead.
    let body = body.replace(
        "href=\"collections/",
        &format!("href=\"{}/collections/", esc(base)),
    );
    page(base, "Collections", &body)
}

/// One collection's metadata.
pub fn collection(base: &str, c: &Value) -> String {
    let id = c["id"].as_str().unwrap_or("");
    let mut body = format!(
        "<p>{}</p><p><a href=\"{b}/collections/{i}/items?f=html\">Browse the items</a></p>",
        esc(c["description"].as_str().unwrap_or("")),
        b = esc(base),
        i = esc(id)
    );
    if let Some(bb) = c["extent"]["spatial"]["bbox"][0].as_array() {
        let nums: Vec<String> = bb.iter().map(|x| x.to_string()).collect();
        let _ = write!(
            body,
            "<p>Extent (CRS84): <code>{}</code></p>",
            esc(&nums.join(", "))
        );
    }
    let _ = write!(body, "<h2>Links</h2>{}", links_table(&c["links"]));
    page(base, c["title"].as_str().unwrap_or(id), &body)
}

fn cell(f: Field<'_>) -> String {
    match f {
        Field::Null => String::new(),
        other => match other.to_json() {
            Value::String(s) => esc(&s),
            v => esc(&v.to_string()),
        },
    }
}

/// One items page as a table of ids and properties, with paging links.
pub fn items(
    base: &str,
    title: &str,
    collection_id: &str,
    records: &[std::sync::Arc<Record>],
    names: &[&str],
    matched: Option<usize>,
    links: &Value,
) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<p>{} feature(s) on this page{}.</p>",
        records.len(),
        matched
            .map(|m| format!(" of {m} matching"))
            .unwrap_or_default()
    );
    let mut nav = String::from("<p>");
    for l in links.as_array().into_iter().flatten() {
        let rel = l["rel"].as_str().unwrap_or("");
        if rel == "prev" || rel == "next" {
            let _ = write!(
                nav,
                "<a href=\"{}\">{}</a> ",
                esc(l["href"].as_str().unwrap_or("")),
                if rel == "next" {
                    "Next page →"
                } else {
                    "← Previous page"
                }
            );
        }
    }
    nav.push_str("</p>");
    body.push_str(&nav);
    body.push_str("<table><tr><th>id</th>");
    for n in names {
        let _ = write!(body, "<th>{}</th>", esc(n));
    }
    body.push_str("</tr>");
    for r in records {
        let _ = write!(
            body,
            "<tr><td><a href=\"{}/collections/{}/items/{id}?f=html\">{id}</a></td>",
            esc(base),
            esc(collection_id),
            id = r.id()
        );
        for n in names {
            let _ = write!(body, "<td>{}</td>", cell(field(r, n)));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    body.push_str(&nav);
    page(base, title, &body)
}

/// One feature: its properties and its geometry type and first coordinates.
pub fn feature(base: &str, collection_id: &str, r: &Record, names: &[&str]) -> String {
    let mut body = format!(
        "<p><a href=\"{}/collections/{c}/items?f=html\">All items of {c}</a></p><table><tr><th>property</th><th>value</th></tr><tr><td>id</td><td>{}</td></tr>",
        esc(base),
        r.id(),
        c = esc(collection_id)
    );
    for n in names {
        let f = field(r, n);
        if f != Field::Null {
            let _ = write!(body, "<tr><td>{}</td><td>{}</td></tr>", esc(n), cell(f));
        }
    }
    if let Some(g) = r.geometry() {
        let wkt = lifeline_model::geom::to_geojson(&g);
        let text = serde_json::to_string(&wkt).unwrap_or_default();
        let short: String = text.chars().take(400).collect();
        let _ = write!(
            body,
            "<tr><td>geometry (CRS84)</td><td><code>{}{}</code></td></tr>",
            esc(&short),
            if text.len() > short.len() { "…" } else { "" }
        );
    }
    body.push_str("</table>");
    page(base, &format!("{collection_id} {}", r.id()), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_negotiates() {
        assert_eq!(
            esc("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h, None));
        h.insert(
            axum::http::header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8".parse().unwrap(),
        );
        assert!(wants_html(&h, None));
        assert!(!wants_html(&h, Some("json")));
        assert!(wants_html(&HeaderMap::new(), Some("html")));
        let p = page("http://h/ogc", "<t>", "<p>x</p>");
        assert!(p.contains("&lt;t&gt;") && !p.contains("<script") && !p.contains("https://"));
    }
}
