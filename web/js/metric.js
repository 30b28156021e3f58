// Metres on the ground for the 3D view and the cross-section, without a round trip to the
// service: a local tangent plane at one latitude, with the CGCS2000 ellipsoid's radii of
// curvature there (east: N·cos φ, north: M). For windows and section lines up to 500 m the
// plane differs from the ellipsoid's geodesic distance by less than 1 cm (the neglected
// change of N·cos φ across the line is tan φ · Δφ ≈ 2e-5 of the east-west span at
// Chongqing's 30° N; the earth's curvature adds (L/R)² ≈ 6e-9); docs/web.md gives the
// bound and how it compares with the service's projected-CRS distances. Pure functions, no
// DOM: also loaded by tests/web/e2e.mjs to judge the page against the same arithmetic.

const A = 6378137; // CGCS2000 semi-major axis, m
const F = 1 / 298.257222101; // CGCS2000 flattening
const E2 = F * (2 - F);
const RAD = Math.PI / 180;

/** Metres per degree of longitude (`kx`) and latitude (`ky`) at latitude `lat0`. */
export function frame(lat0) {
  const s = Math.sin(lat0 * RAD);
  const w = Math.sqrt(1 - E2 * s * s);
  const n = A / w; // prime vertical radius
  const m = (A * (1 - E2)) / (w * w * w); // meridian radius
  return { kx: n * Math.cos(lat0 * RAD) * RAD, ky: m * RAD };
}

/** A local plane around `origin` [lon, lat]: `xy([lon, lat])` in metres east and north. */
export function plane(origin) {
  const { kx, ky } = frame(origin[1]);
  return {
    xy: (p) => [(p[0] - origin[0]) * kx, (p[1] - origin[1]) * ky],
    lonlat: (q) => [origin[0] + q[0] / kx, origin[1] + q[1] / ky],
  };
}

/** Length in metres of a polyline of [lon, lat] (each segment in its own local plane). */
export function lengthM(coords) {
  let s = 0;
  for (let i = 1; i < coords.length; i += 1) {
    const a = coords[i - 1];
    const b = coords[i];
    const { kx, ky } = frame((a[1] + b[1]) / 2);
    s += Math.hypot((b[0] - a[0]) * kx, (b[1] - a[1]) * ky);
  }
  return s;
}

/** Top-of-pipe depth along a pipe: depth_start_m at its first vertex, depth_end_m at its
 * last, linear in length between (one recorded end stands for both, as the service's
 * clearance audit reads them); null when neither is recorded. */
export function depthAt(props, fraction) {
  const d0 = props.depth_start_m ?? props.depth_end_m;
  const d1 = props.depth_end_m ?? props.depth_start_m;
  if (d0 == null || d1 == null) return null;
  return d0 + (d1 - d0) * fraction;
}

/** Outer size of a pipe in metres: its diameter, or the larger side of its section; null
 * when the role does not see it or it is not recorded. */
export function sizeM(props) {
  const d = props.diameter_mm ?? Math.max(props.section_width_mm ?? 0, props.section_height_mm ?? 0);
  return d > 0 ? d / 1000 : null;
}

/** The fraction of its length at each vertex of a polyline. */
export function vertexFractions(coords) {
  const cum = [0];
  for (let i = 1; i < coords.length; i += 1) cum.push(cum[i - 1] + lengthM([coords[i - 1], coords[i]]));
  const total = cum[cum.length - 1] || 1;
  return cum.map((c) => c / total);
}

/** Where a polyline `coords` crosses the segment `a`→`b` (all [lon, lat]): for each
 * crossing, the distance from `a` in metres and the fraction of the polyline's length
 * there. In the plane at the section's midpoint. */
export function crossings(a, b, coords) {
  const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const { xy } = plane(mid);
  const p = xy(a);
  const r = [xy(b)[0] - p[0], xy(b)[1] - p[1]];
  const len = Math.hypot(r[0], r[1]);
  const fr = vertexFractions(coords);
  const out = [];
  for (let i = 1; i < coords.length; i += 1) {
    const q = xy(coords[i - 1]);
    const q2 = xy(coords[i]);
    const s = [q2[0] - q[0], q2[1] - q[1]];
    const den = r[0] * s[1] - r[1] * s[0];
    if (Math.abs(den) < 1e-12) continue; // parallel: no single crossing
    const qp = [q[0] - p[0], q[1] - p[1]];
    const t = (qp[0] * s[1] - qp[1] * s[0]) / den; // along the section
    const u = (qp[0] * r[1] - qp[1] * r[0]) / den; // along this pipe segment
    if (t < 0 || t > 1 || u < 0 || u > 1) continue;
    out.push({ distance_m: t * len, fraction: fr[i - 1] + (fr[i] - fr[i - 1]) * u });
  }
  return out;
}

/** The intervals [from, to] in metres along `a`→`b` that lie inside polygon `ring`
 * ([lon, lat] ring): where the section passes through a dig. */
export function insideIntervals(a, b, ring) {
  const { xy } = plane([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]);
  const p = xy(a);
  const q = xy(b);
  const len = Math.hypot(q[0] - p[0], q[1] - p[1]);
  const ts = [0, 1];
  const pts = ring.map(xy);
  for (let i = 1; i < pts.length; i += 1) {
    const c = pts[i - 1];
    const d = pts[i];
    const r = [q[0] - p[0], q[1] - p[1]];
    const s = [d[0] - c[0], d[1] - c[1]];
    const den = r[0] * s[1] - r[1] * s[0];
    if (Math.abs(den) < 1e-12) continue;
    const cp = [c[0] - p[0], c[1] - p[1]];
    const t = (cp[0] * s[1] - cp[1] * s[0]) / den;
    const u = (cp[0] * r[1] - cp[1] * r[0]) / den;
    if (t > 0 && t < 1 && u >= 0 && u <= 1) ts.push(t);
  }
  ts.sort((x, y) => x - y);
  const inside = (pt) => {
    let k = false;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i, i += 1) {
      const [xi, yi] = pts[i];
      const [xj, yj] = pts[j];
      if ((yi > pt[1]) !== (yj > pt[1]) && pt[0] < ((xj - xi) * (pt[1] - yi)) / (yj - yi) + xi) k = !k;
    }
    return k;
  };
  const out = [];
  for (let i = 1; i < ts.length; i += 1) {
    const m = (ts[i - 1] + ts[i]) / 2;
    if (ts[i] - ts[i - 1] > 1e-9 && inside([p[0] + (q[0] - p[0]) * m, p[1] + (q[1] - p[1]) * m])) {
      const last = out[out.length - 1];
      if (last && Math.abs(last[1] - ts[i - 1] * len) < 1e-6) last[1] = ts[i] * len;
      else out.push([ts[i - 1] * len, ts[i] * len]);
    }
  }
  return out;
}

/** A trench (a line dug `width` metres wide) as polygons: one rectangle per segment. */
export function trenchPolygons(coords, width) {
  const { xy, lonlat } = plane(coords[0]);
  const h = width / 2;
  const out = [];
  for (let i = 1; i < coords.length; i += 1) {
    const a = xy(coords[i - 1]);
    const b = xy(coords[i]);
    const l = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1;
    const n = [(-(b[1] - a[1]) / l) * h, ((b[0] - a[0]) / l) * h];
    const ring = [[a[0] + n[0], a[1] + n[1]], [b[0] + n[0], b[1] + n[1]], [b[0] - n[0], b[1] - n[1]], [a[0] - n[0], a[1] - n[1]]];
    out.push([...ring, ring[0]].map(lonlat));
  }
  return out;
}
