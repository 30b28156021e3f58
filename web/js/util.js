// Small helpers shared by the views: geometry bounds, HTML escaping, the attribute table
// of a popup, and the SVG sparkline of sensor readings.

/** `[[minLon, minLat], [maxLon, maxLat]]` of a GeoJSON geometry, or null. */
export function featureBounds(g) {
  if (!g) return null;
  let a = Infinity; let b = Infinity; let c = -Infinity; let d = -Infinity;
  const walk = (x) => {
    if (typeof x[0] === 'number') {
      a = Math.min(a, x[0]); b = Math.min(b, x[1]); c = Math.max(c, x[0]); d = Math.max(d, x[1]);
    } else for (const y of x) walk(y);
  };
  if (g.type === 'GeometryCollection') g.geometries.forEach((x) => walk(x.coordinates));
  else walk(g.coordinates);
  return Number.isFinite(a) ? [[a, b], [c, d]] : null;
}

/** HTML-escapes a value. */
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** The popup body of one record: its title and every attribute the caller's role gets. */
export function popupHtml(layer, f, t, tv) {
  const p = f.properties ?? {};
  const id = f.id ?? p.id;
  const title = p.name ? `${esc(p.name)} <small>#${esc(id)}</small>`
    : `${esc(tv('layer', layer))} #${esc(id)}`;
  const rows = Object.entries(p)
    .filter(([k, v]) => v !== null && v !== undefined && k !== 'name' && k !== 'id')
    .map(([k, v]) => {
      let shown = v;
      if (k === 'kind' && (layer === 'pipelines' || layer === 'nodes')) shown = tv('kind', v);
      else if (k === 'level' && layer === 'risk_points') shown = tv('risk', v);
      else if (k === 'level' && layer === 'grid_cells') shown = tv('level', v);
      else if (k === 'valve_position') shown = tv('position', v);
      else if (typeof v === 'string') shown = tv('val', v);
      return `<dt>${esc(t(k))}</dt><dd>${esc(typeof shown === 'object' ? JSON.stringify(shown) : shown)}</dd>`;
    });
  return `<h4>${title}</h4><dl class="kv" data-layer="${esc(layer)}" data-id="${esc(id)}">${rows.join('')}</dl>`;
}

/** An SVG sparkline of `[time, value]` pairs (times in ms), `w`×`h` pixels. */
export function sparkline(points, w = 260, h = 56) {
  if (!points.length) return '';
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs); const x1 = Math.max(...xs);
  const y0 = Math.min(...ys); const y1 = Math.max(...ys);
  const sx = (x) => (x1 === x0 ? w / 2 : ((x - x0) / (x1 - x0)) * (w - 4) + 2);
  const sy = (y) => (y1 === y0 ? h / 2 : h - 2 - ((y - y0) / (y1 - y0)) * (h - 4));
  // One point still draws (a dot: a zero-length segment with round caps).
  const d = points.length === 1
    ? `M${sx(xs[0]).toFixed(1)},${sy(ys[0]).toFixed(1)}h0.1`
    : points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join('');
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
  return `<svg class="spark" width="${w}" height="${h + 14}" role="img" aria-label="${fmt(y0)} – ${fmt(y1)}">`
    + `<path d="${d}"/><text x="2" y="${h + 12}" font-size="10">${fmt(y0)} – ${fmt(y1)}</text></svg>`;
}
