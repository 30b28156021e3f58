// The datum the map is drawn in. The service's data is CGCS2000 lon/lat (equal to WGS84 at
// map precision). Over a GCJ-02 basemap (Chinese commercial maps: AMap, Tencent) the
// imagery is offset by a few hundred metres, so everything of ours is drawn in GCJ-02 too:
// the vector tiles are cut in GCJ-02 by the service (`?datum=gcj02`, added to tile URLs by
// `tileUrl`), and the GeoJSON this client draws (search results, alarms, conflicts,
// navigation extents) is moved here with the same published formula as the service's
// (src/io/import.rs `wgs84_to_gcj02`). What the user draws is moved back before it is
// sent (`toData`, by fixed-point iteration, well under a millimetre).

const A = 6378245.0;
const EE = 0.00669342162296594323;

let current = 'cgcs2000';

/** The display datum: `cgcs2000` or `gcj02`. */
export const datum = () => current;

/** Sets the display datum (from `GET /client-config`'s basemap). */
export function setDatum(d) {
  current = d === 'gcj02' ? 'gcj02' : 'cgcs2000';
}

function dLat(x, y) {
  let r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  r += ((20 * Math.sin(y * Math.PI) + 40 * Math.sin((y / 3) * Math.PI)) * 2) / 3;
  r += ((160 * Math.sin((y / 12) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30)) * 2) / 3;
  return r;
}

function dLon(x, y) {
  let r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  r += ((20 * Math.sin(x * Math.PI) + 40 * Math.sin((x / 3) * Math.PI)) * 2) / 3;
  r += ((150 * Math.sin((x / 12) * Math.PI) + 300 * Math.sin((x / 30) * Math.PI)) * 2) / 3;
  return r;
}

/** WGS84/CGCS2000 → GCJ-02 (identity outside China's rough box, as the service). */
export function wgs84ToGcj02(lon, lat) {
  if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
  const radLat = (lat / 180) * Math.PI;
  const magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat);
  const sq = Math.sqrt(magic);
  const la = (dLat(lon - 105, lat - 35) * 180) / (((A * (1 - EE)) / (magic * sq)) * Math.PI);
  const lo = (dLon(lon - 105, lat - 35) * 180) / ((A / sq) * Math.cos(radLat) * Math.PI);
  return [lon + lo, lat + la];
}

/** GCJ-02 → WGS84/CGCS2000 by iterating the forward offset. */
export function gcj02ToWgs84(lon, lat) {
  let x = lon; let y = lat;
  for (let i = 0; i < 20; i += 1) {
    const [gx, gy] = wgs84ToGcj02(x, y);
    const dx = gx - lon; const dy = gy - lat;
    x -= dx; y -= dy;
    if (Math.abs(dx) < 1e-12 && Math.abs(dy) < 1e-12) break;
  }
  return [x, y];
}

/** A service position `[lon, lat]` where it is drawn. */
export const toDisplay = (p) => (current === 'gcj02' ? wgs84ToGcj02(p[0], p[1]) : [p[0], p[1]]);

/** A drawn position `[lon, lat]` in the service's datum (7 decimals, ~1 cm). */
export const toData = (p) => {
  const [x, y] = current === 'gcj02' ? gcj02ToWgs84(p[0], p[1]) : p;
  return [Number(x.toFixed(7)), Number(y.toFixed(7))];
};

function mapCoords(c, f) {
  return typeof c[0] === 'number' ? f(c) : c.map((x) => mapCoords(x, f));
}

function mapGeometry(g, f) {
  if (!g) return g;
  if (g.type === 'GeometryCollection') return { ...g, geometries: g.geometries.map((x) => mapGeometry(x, f)) };
  return { ...g, coordinates: mapCoords(g.coordinates, f) };
}

/** A GeoJSON geometry, Feature or FeatureCollection from the service, as drawn. */
export function geoToDisplay(o) {
  if (current === 'cgcs2000' || !o) return o;
  if (o.type === 'FeatureCollection') return { ...o, features: o.features.map(geoToDisplay) };
  if (o.type === 'Feature') return { ...o, geometry: mapGeometry(o.geometry, toDisplay) };
  return mapGeometry(o, toDisplay);
}

/** A drawn GeoJSON geometry in the service's datum. */
export const geometryToData = (g) => mapGeometry(g, toData);

/** A tile URL of the service with the display datum (unchanged in CGCS2000). The derived
 * risk layers (grid_stats, alarm_density) have no GCJ-02 form; this client keeps them hidden. */
export function tileUrl(url) {
  if (current === 'cgcs2000' || !/\/tiles\/[^?]+\/\d+\/\d+\/\d+\.(mvt|pbf)(\?|$)/.test(url)) return url;
  if (/grid_stats|alarm_density/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}datum=gcj02`;
}
