// The 3D underground view (issue 18): what lies under a dig, a ticket, a trace or any
// window up to 500 m, drawn by deck.gl interleaved in the MapLibre map (MapboxOverlay).
// The map tilts; each pipe is a tube at its depth (top of pipe from depth_start_m to
// depth_end_m along its length, plus half its size, sized by diameter or section, coloured
// by kind as the served style colours it), with a vertical exaggeration control; the dig is
// a translucent prism over its depth range; each violation's clearance envelope is a wide
// translucent band around its pipe; a trace's isolated segment and cut-off pockets are
// red and orange halos around their tubes; pipes whose depth the caller cannot see, or nobody
// recorded, are ghosted at a nominal depth and labelled. Clicking a tube opens the record
// as the caller's role may read it (GET /features/pipelines/{id}).
//
// Data: only the existing APIs, as the caller's role gets them — pipes from
// `GET /ogc/collections/pipelines/items?bbox=` (depths and sizes are analyst attributes: a
// viewer's or contractor's come without them) and, for a dig or a ticket, the check's
// GeoJSON (`POST /excavation/check?format=geojson`, `GET /excavation/tickets/{id}?f=geojson`),
// whose conflicts carry the depth band and required clearances the check judged with — so a
// contractor sees the conflicting pipes at the depth the check told them, and nothing else.
//
// The cross-section: two clicks draw a line; the pipes of the window crossing it are drawn
// as a 2D profile (distance along the line in metres, depth below ground, the dig's depth
// range where the line passes through it, each conflict's required clearances) in an SVG
// shown in the card and downloadable. Metres come from js/metric.js (a local plane, < 1 cm
// off over 500 m).

import { api, download } from './api.js';
import { loadDeck } from './deck.js';
import { onLang, t, tv } from './i18n.js';
import { geoToDisplay, toData, toDisplay } from './datum.js';
import { crossings, depthAt, insideIntervals, lengthM, plane, sizeM, trenchPolygons, vertexFractions } from './metric.js';
import { matchPairs } from './network.js';
import { esc, featureBounds } from './util.js';

const $ = (id) => document.getElementById(id);
/** Largest window side, m ("any window up to ~500 m"); larger views are cut around their centre. */
export const MAX_WINDOW_M = 500;
/** Where a pipe of unknown depth is drawn (top of pipe, m below ground). */
export const NOMINAL_DEPTH_M = 1.0;
/** Drawn size of a pipe whose size is not known to the caller, m. */
const DEFAULT_SIZE_M = 0.2;
const PITCH = 60;
const MAX_LABELS = 40;
const SEV_RGB = { violation: [208, 0, 0], warning: [255, 140, 0], info: [30, 120, 255] };

const hexRgb = (h) => {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(h ?? '');
  return m ? [1, 2, 3].map((i) => parseInt(m[i], 16)) : [102, 0, 204];
};

/** deck.gl 9.4's MapboxOverlay reads `map.transform` (its height, near and far planes), the
 * API of MapLibre ≤ 5 and Mapbox; MapLibre 6 keeps the transform on its camera. An alias,
 * only where the map lacks it (tests/web/e2e.mjs fails on the console error it would raise). */
function transformShim(map) {
  if (!('transform' in map) && map._camera?.transform) {
    Object.defineProperty(map, 'transform', { configurable: true, get: () => map._camera.transform });
  }
}

export function initUnderground(app) {
  const { map } = app;
  const styleLayer = app.styles.network.layers.find((l) => l.id === app.pipeLayers[0]);
  const { pairs, fallback } = matchPairs(styleLayer?.paint?.['line-color']);
  const kindRgb = Object.fromEntries(pairs.map(([k, c]) => [k, hexRgb(c)]));
  const colourOf = (kind) => kindRgb[kind] ?? hexRgb(fallback);

  const empty = { type: 'FeatureCollection', features: [] };
  map.addSource('section-line', { type: 'geojson', data: empty });
  map.addLayer({ id: 'section-line', type: 'line', source: 'section-line',
    paint: { 'line-color': '#13283f', 'line-width': 3, 'line-dasharray': [2, 1] } });
  map.addLayer({ id: 'section-ends', type: 'circle', source: 'section-line', filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-radius': 5, 'circle-color': '#fff', 'circle-stroke-color': '#13283f', 'circle-stroke-width': 2 } });
  for (const v of Object.keys(app.viewLayers)) app.viewLayers[v].push('section-line', 'section-ends');

  const state = {
    active: false,
    deck: null,
    overlay: null,
    exaggeration: 5,
    showDig: true,
    showEnvelopes: true,
    pipes: [], // {id, kind, status, coords (display), data (CGCS2000), known, size, depth(fraction), conflict}
    dig: null, // {polygons: [[lon,lat]…][], top, bottom, rings in data datum}
    window: null, // [[w,s],[e,n]] display
    section: null, // {a, b (data datum), rows, svg}
    drawing: null, // points of the section being drawn
    saved: null, // the camera before the view opened
    trace: new Map(), // pipe id → 'segment' | 'pocket' of a trace shown in 3D
    fadedPaint: null,
  };

  // ---- data ------------------------------------------------------------------------------

  /** The window as display bounds, cut to MAX_WINDOW_M around `c` (by default its centre). */
  function clampWindow(b, c = [(b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2]) {
    const { xy, lonlat } = plane(c);
    const lo = xy(b[0]);
    const hi = xy(b[1]);
    const h = MAX_WINDOW_M / 2;
    const cut = (v) => Math.max(-h, Math.min(h, v));
    return [lonlat([cut(lo[0]), cut(lo[1])]), lonlat([cut(hi[0]), cut(hi[1])])];
  }

  async function fetchPipes(win) {
    const lo = toData(win[0]);
    const hi = toData(win[1]);
    const bbox = [lo[0], lo[1], hi[0], hi[1]].map((v) => v.toFixed(7)).join(',');
    const out = [];
    for (let offset = 0; ; offset += 10000) {
      const page = await api(`/ogc/collections/pipelines/items?bbox=${bbox}&limit=10000&offset=${offset}`);
      out.push(...page.features);
      if (page.features.length < 10000) break;
    }
    return out;
  }

  /** One drawable pipe from an OGC feature, with the check's conflict for it (if any). */
  function pipeRecord(f, conflict) {
    const data = f.geometry.coordinates;
    const p = f.properties ?? {};
    const id = Number(f.id ?? p.id);
    const fr = vertexFractions(data);
    let depth = depthAt(p, 0) == null ? null : (x) => depthAt(p, x);
    let source = depth ? 'attributes' : null;
    // A contractor's pipe has no depth attributes, but the check told them its depth band.
    const band = conflict?.pipe_depth_m;
    if (!depth && band) {
      depth = () => band[0];
      source = 'check';
    }
    const size = sizeM(p) ?? (conflict?.diameter_mm ? conflict.diameter_mm / 1000 : null);
    return {
      id, kind: p.kind ?? conflict?.kind, status: p.status, data, fr,
      coords: data.map(toDisplay), known: Boolean(depth), source, size, sizeKnown: size != null,
      depth: depth ?? (() => NOMINAL_DEPTH_M), conflict, length: lengthM(data),
    };
  }

  function digFrom(geo, widthM) {
    const f = geo?.features?.find((x) => x.properties?.role === 'dig_area');
    if (!f) return null;
    const p = f.properties;
    const g = f.geometry;
    let rings = [];
    if (g.type === 'Polygon') rings = [g.coordinates[0]];
    else if (g.type === 'MultiPolygon') rings = g.coordinates.map((c) => c[0]);
    else if (g.type === 'LineString') rings = trenchPolygons(g.coordinates, widthM ?? 1);
    return { rings, display: rings.map((r) => r.map(toDisplay)), top: p.top_depth_m, bottom: p.bottom_depth_m };
  }

  // ---- layers ----------------------------------------------------------------------------

  const z = (p, fraction) => -(p.depth(fraction) + (p.size ?? DEFAULT_SIZE_M) / 2) * state.exaggeration;
  const path3d = (p) => p.coords.map((c, i) => [c[0], c[1], z(p, p.fr[i])]);

  function layers() {
    const d = state.deck;
    const ex = state.exaggeration;
    const known = state.pipes.filter((p) => p.known);
    const ghosts = state.pipes.filter((p) => !p.known);
    const trig = { getPath: ex };
    const out = [
      new d.PathLayer({
        id: 'u3d-ghosts', data: ghosts, getPath: path3d, pickable: true, billboard: true,
        getColor: (p) => [...colourOf(p.kind), 90], getWidth: (p) => p.size ?? DEFAULT_SIZE_M,
        widthUnits: 'meters', widthMinPixels: 2, capRounded: true, jointRounded: true, updateTriggers: trig,
        parameters: { depthWriteEnabled: false },
      }),
      new d.PathLayer({
        id: 'u3d-tubes', data: known, getPath: path3d, pickable: true, billboard: true,
        getColor: (p) => colourOf(p.kind), getWidth: (p) => p.size ?? DEFAULT_SIZE_M,
        widthUnits: 'meters', widthMinPixels: 3, capRounded: true, jointRounded: true, updateTriggers: trig,
      }),
      // Plumb lines from the ground to each conflict where the check measured it.
      new d.LineLayer({
        id: 'u3d-plumb', data: state.pipes.filter((p) => p.conflict?.nearest_point),
        getSourcePosition: (p) => [...toDisplay(p.conflict.nearest_point), 0],
        getTargetPosition: (p) => [...toDisplay(p.conflict.nearest_point), z(p, 0.5)],
        getColor: (p) => [...(SEV_RGB[p.conflict.severity] ?? [60, 60, 60]), 200], getWidth: 1.5, updateTriggers: { getTargetPosition: ex },
      }),
      new d.TextLayer({
        id: 'u3d-unknown-labels',
        data: ghosts.filter((p) => p.length > 5).sort((a, b) => b.length - a.length).slice(0, MAX_LABELS),
        getPosition: (p) => { const m = p.coords[Math.floor(p.coords.length / 2)]; return [m[0], m[1], z(p, 0.5)]; },
        getText: () => t('depth_unknown'), getSize: 12, getColor: [60, 60, 60, 220],
        characterSet: 'auto', fontFamily: 'system-ui, "Noto Sans CJK SC", sans-serif',
        background: true, getBackgroundColor: [255, 255, 255, 200], backgroundPadding: [3, 1],
        billboard: true, updateTriggers: { getPosition: ex, getText: document.documentElement.lang },
      }),
    ];
    // A trace's isolated segment (red) and the pockets it cuts off (orange), as halos.
    if (state.trace.size) {
      out.push(new d.PathLayer({
        id: 'u3d-trace', data: state.pipes.filter((p) => state.trace.has(p.id)), getPath: path3d, billboard: true,
        widthUnits: 'meters', getWidth: (p) => (p.size ?? DEFAULT_SIZE_M) + 1.2, widthMinPixels: 6,
        getColor: (p) => (state.trace.get(p.id) === 'segment' ? [215, 25, 28, 110] : [255, 140, 0, 110]),
        capRounded: true, jointRounded: true, updateTriggers: trig, parameters: { depthWriteEnabled: false },
      }));
    }
    if (state.showEnvelopes) {
      out.push(new d.PathLayer({
        id: 'u3d-envelopes', data: state.pipes.filter((p) => p.conflict?.severity === 'violation'),
        getPath: path3d, billboard: true, widthUnits: 'meters',
        getWidth: (p) => (p.size ?? DEFAULT_SIZE_M) + 2 * (p.conflict.required_clearance_m ?? 0),
        getColor: [208, 0, 0, 60], capRounded: true, jointRounded: true, updateTriggers: trig,
        parameters: { depthWriteEnabled: false },
      }));
    }
    // The section line on the ground (the map's own line is under the prism and tubes).
    if (state.section) {
      const ends = [state.section.a, state.section.b].map(toDisplay);
      out.push(new d.PathLayer({
        id: 'u3d-section', data: [ends], getPath: (e) => e.map((c) => [c[0], c[1], 0]), getColor: [19, 40, 63, 230],
        getWidth: 3, widthUnits: 'pixels',
      }));
    }
    if (state.dig && state.showDig) {
      const { top, bottom } = state.dig;
      out.push(new d.PolygonLayer({
        id: 'u3d-dig', data: state.dig.display,
        getPolygon: (r) => r.map((c) => [c[0], c[1], -bottom * ex]),
        extruded: true, wireframe: true, getElevation: (bottom - top) * ex,
        getFillColor: [11, 92, 173, 55], getLineColor: [11, 92, 173, 220], lineWidthMinPixels: 1,
        updateTriggers: { getPolygon: ex, getElevation: ex },
        parameters: { depthWriteEnabled: false },
      }));
    }
    return out;
  }

  function redraw() {
    if (state.overlay) state.overlay.setProps({ layers: layers() });
    $('view3d-ex-out').textContent = `×${state.exaggeration}`;
  }

  // ---- opening and closing ---------------------------------------------------------------

  /** Opens the view over `bounds` (display [[w,s],[e,n]]; cut to 500 m around `centre`),
   * with a check's GeoJSON (and its trench width) when it is for a dig or a ticket, or a
   * trace's GeoJSON. */
  async function open({ bounds, centre = undefined, geo = null, widthM = null, what = '', trace = null }) {
    const status = $('view3d-status');
    $('view3d').hidden = false;
    status.textContent = t('view3d_loading');
    try {
      state.deck = await loadDeck();
      const win = clampWindow(bounds, centre);
      const conflicts = new Map((geo?.features ?? []).filter((f) => f.properties?.role === 'pipe')
        .map((f) => [Number(f.properties.pipeline_id), f.properties]));
      const features = await fetchPipes(win);
      state.window = win;
      state.pipes = features.map((f) => pipeRecord(f, conflicts.get(Number(f.id ?? f.properties?.id))));
      state.dig = digFrom(geo, widthM);
      state.what = what;
      state.trace = new Map((trace?.features ?? [])
        .filter((f) => f.properties?.layer === 'pipelines' && ['segment', 'pocket'].includes(f.properties.role))
        .map((f) => [Number(f.properties.id), f.properties.role]));
      clearSection();
      if (!state.active) state.saved = { center: map.getCenter(), zoom: map.getZoom(), pitch: map.getPitch(), bearing: map.getBearing() };
      // The camera first: the overlay takes the map's view when it is added, and follows
      // the map's moves only once deck.gl has initialised (picking reads that view).
      // Keep the window clear of the card (right) when the map is wide enough.
      const card = $('view3d').getBoundingClientRect().width;
      const wide = map.getCanvas().clientWidth >= card + 420;
      const cam = map.cameraForBounds(win, { padding: { top: 40, bottom: 40, left: 40, right: wide ? card + 60 : 40 } });
      map.jumpTo({ ...cam, pitch: PITCH, bearing: map.getBearing() });
      if (!state.active) {
        transformShim(map);
        state.overlay = new state.deck.MapboxOverlay({
          interleaved: true,
          layers: [],
          onClick: (info) => {
            if (!info.object || state.drawing) return;
            const c = info.object.coords[Math.floor(info.object.coords.length / 2)];
            app.showRecord('pipelines', info.object.id, info.coordinate ? [info.coordinate[0], info.coordinate[1]] : c)
              .catch((e) => app.toast(e.message, 'error'));
          },
          getCursor: ({ isHovering }) => (state.drawing ? 'crosshair' : isHovering ? 'pointer' : ''),
        });
        map.addControl(state.overlay);
        fade(true);
        state.active = true;
        app.view3dActive = true;
      }
      redraw();
      renderStatus();
      document.body.dataset.view3d = 'ready';
      return state;
    } catch (e) {
      status.textContent = `${t('error')}: ${e.message}`;
      document.body.dataset.view3d = 'error';
      throw e;
    }
  }

  function renderStatus() {
    if (!state.active) return;
    const n = state.pipes.length;
    const k = state.pipes.filter((p) => p.known).length;
    $('view3d-status').textContent = `${state.what ? `${state.what} · ` : ''}${t('view3d_summary', { n, k, u: n - k, d: NOMINAL_DEPTH_M })}`;
  }

  /** The network's own pipe lines fade while the tubes are shown (their plan position). */
  function fade(on) {
    for (const id of app.pipeLayers) {
      if (!map.getLayer(id)) continue;
      if (on) {
        state.fadedPaint ??= {};
        state.fadedPaint[id] = map.getPaintProperty(id, 'line-opacity');
        map.setPaintProperty(id, 'line-opacity', 0.3);
      } else if (state.fadedPaint) {
        map.setPaintProperty(id, 'line-opacity', state.fadedPaint[id]);
      }
    }
    if (!on) state.fadedPaint = null;
  }

  function close() {
    if (!state.active) return;
    stopDrawing();
    map.removeControl(state.overlay);
    state.overlay = null;
    state.active = false;
    app.view3dActive = false;
    fade(false);
    map.getSource('section-line')?.setData(empty);
    if (state.saved) map.jumpTo(state.saved);
    $('view3d').hidden = true;
    delete document.body.dataset.view3d;
  }

  // ---- cross-section ---------------------------------------------------------------------

  function clearSection() {
    state.section = null;
    redraw();
    $('section').hidden = true;
    map.getSource('section-line')?.setData(empty);
  }

  function drawLine(points) {
    const features = points.map((c) => ({ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: c } }));
    if (points.length === 2) features.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: points } });
    map.getSource('section-line').setData({ type: 'FeatureCollection', features });
  }

  function startDrawing() {
    if (!state.active) return;
    clearSection();
    state.drawing = [];
    app.drawing = true;
    map.doubleClickZoom.disable(); // two quick clicks are the line's ends, not a zoom
    $('section-draw').setAttribute('aria-pressed', 'true');
    $('view3d-status').textContent = t('section_help');
    map.getCanvas().style.cursor = 'crosshair';
    map.getCanvas().focus();
  }

  function stopDrawing() {
    if (!state.drawing) return;
    state.drawing = null;
    app.drawing = false;
    setTimeout(() => map.doubleClickZoom.enable(), 0); // after this click's dblclick, if any
    $('section-draw').setAttribute('aria-pressed', 'false');
    map.getCanvas().style.cursor = '';
    renderStatus();
  }

  function addPoint(lngLat) {
    const p = [Number(lngLat[0].toFixed(7)), Number(lngLat[1].toFixed(7))];
    state.drawing.push(p);
    drawLine(state.drawing);
    if (state.drawing.length === 2) {
      const [a, b] = state.drawing;
      stopDrawing();
      section(a, b);
    }
  }
  map.on('click', (e) => { if (state.drawing) addPoint([e.lngLat.lng, e.lngLat.lat]); });
  map.getCanvas().addEventListener('keydown', (e) => {
    if (!state.drawing) return;
    if (e.key === 'Escape') { e.preventDefault(); stopDrawing(); map.getSource('section-line').setData(empty); }
    else if (e.key === ' ') { e.preventDefault(); const c = map.getCenter(); addPoint([c.lng, c.lat]); }
  });

  /** The profile along `a`→`b` (display [lon, lat]): rows sorted by distance. */
  function section(a, b) {
    const da = toData(a);
    const db = toData(b);
    const rows = [];
    for (const p of state.pipes) {
      for (const x of crossings(da, db, p.data)) {
        rows.push({
          id: p.id, kind: p.kind, distance: x.distance_m, known: p.known,
          depth: p.known ? p.depth(x.fraction) : null, size: p.size, sizeKnown: p.sizeKnown, conflict: p.conflict,
        });
      }
    }
    rows.sort((x, y) => x.distance - y.distance);
    const length = lengthM([da, db]);
    const digs = state.dig ? state.dig.rings.flatMap((r) => insideIntervals(da, db, r)) : [];
    state.section = { a: da, b: db, length, rows, digs };
    drawLine([a, b]);
    renderSection();
    redraw();
    return state.section;
  }

  function renderSection() {
    const s = state.section;
    if (!s) return;
    const svg = sectionSvg(s, { dig: state.dig, colourOf, t, tv });
    $('section-svg').innerHTML = svg;
    $('section').hidden = false;
    $('section-summary').textContent = s.rows.length
      ? t('section_summary', { n: s.rows.length, m: s.length.toFixed(1) })
      : t('section_none', { m: s.length.toFixed(1) });
  }

  // ---- wiring ----------------------------------------------------------------------------

  $('view3d-ex').addEventListener('input', (e) => { state.exaggeration = Number(e.target.value); redraw(); });
  $('view3d-dig').addEventListener('change', (e) => { state.showDig = e.target.checked; redraw(); });
  $('view3d-env').addEventListener('change', (e) => { state.showEnvelopes = e.target.checked; redraw(); });
  $('view3d-close').addEventListener('click', close);
  $('section-draw').addEventListener('click', startDrawing);
  $('section-download').addEventListener('click', () => {
    const svg = $('section-svg').querySelector('svg');
    if (svg) download(new Blob([svg.outerHTML], { type: 'image/svg+xml' }), 'cross-section.svg');
  });
  onLang(() => { renderStatus(); renderSection(); redraw(); });

  /** The current view (or the 500 m around its centre) in 3D. */
  const openHere = () => {
    const b = map.getBounds();
    return open({ bounds: [[b.getWest(), b.getSouth()], [b.getEast(), b.getNorth()]], what: t('view3d_window') });
  };
  // A map button: any window, any role (a viewer's pipes all come without depth).
  class Control {
    onAdd() {
      const div = document.createElement('div');
      div.className = 'maplibregl-ctrl maplibregl-ctrl-group';
      const b = document.createElement('button');
      b.type = 'button';
      b.id = 'view3d-here';
      b.className = 'ctrl-3d';
      b.textContent = '3D';
      const label = () => { b.title = t('view3d_here'); b.setAttribute('aria-label', t('view3d_here')); };
      label();
      onLang(label);
      b.addEventListener('click', () => (state.active ? close() : openHere().catch(() => {})));
      div.append(b);
      return div;
    }
    onRemove() {}
  }
  map.addControl(new Control(), 'top-right');

  /** A check's or ticket's dig in 3D: the window is the dig with its conflicts around it. */
  const openCheck = (geo, widthM, what) => {
    const shown = { type: 'GeometryCollection', geometries: (geo.features ?? []).filter((f) => ['dig_area', 'nearest_point'].includes(f.properties?.role)).map((f) => geoToDisplay(f.geometry)) };
    const b = featureBounds(shown);
    if (!b) return Promise.resolve(null);
    const pad = (bb) => { const { xy, lonlat } = plane(bb[0]); const lo = xy(bb[0]); const hi = xy(bb[1]); return [lonlat([lo[0] - 15, lo[1] - 15]), lonlat([hi[0] + 15, hi[1] + 15])]; };
    return open({ bounds: pad(b), geo, widthM, what });
  };

  app.view3d = {
    state, open, close, openHere, openCheck, section, startDrawing,
    /** Screen position (CSS px in the map canvas) of [lon, lat] (display) at `depthM` below
     * ground, as drawn now (with the exaggeration): deck.gl's Web Mercator viewport of the
     * map's current camera (MapLibre's default field of view is deck.gl's, 36.87°). */
    project: (lonlat, depthM) => {
      if (!state.deck) return null;
      const c = map.getCenter();
      const canvas = map.getCanvas();
      const vp = new state.deck.WebMercatorViewport({
        width: canvas.clientWidth, height: canvas.clientHeight, longitude: c.lng, latitude: c.lat,
        zoom: map.getZoom(), pitch: map.getPitch(), bearing: map.getBearing(),
      });
      return vp.project([lonlat[0], lonlat[1], -depthM * state.exaggeration]);
    },
    /** The tube drawn at canvas pixel (x, y), as a click there picks it. */
    pick: (x, y) => state.overlay?.pickObject({ x, y })?.object ?? null,
    zOf: (p, fraction) => z(p, fraction),
  };
}

// ---- the profile's SVG (pure) ---------------------------------------------------------------

const niceStep = (span, n) => {
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw) ?? 10 * p;
};

/** An SVG profile of `s` ({length, rows, digs}): x = distance along the line (m), y = depth
 * below ground (m, down). Each pipe is a `<g class="pipe">` with `data-pipeline-id`,
 * `data-distance-m` and, when its depth is known, `data-depth-m` (top of pipe). */
export function sectionSvg(s, { dig, colourOf, t, tv }) {
  const W = 640; const H = 300; const L = 52; const R = 14; const T = 22; const B = 40;
  const deepest = Math.max(
    2,
    ...s.rows.filter((r) => r.known).map((r) => r.depth + (r.size ?? 0) + (r.conflict?.required_vertical_m ?? 0)),
    ...(s.digs.length && dig ? [dig.bottom] : []),
  ) + 0.3;
  const x = (m) => L + (m / (s.length || 1)) * (W - L - R);
  const y = (d) => T + (d / deepest) * (H - T - B);
  const f2 = (v) => v.toFixed(2);
  const parts = [];
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="#efe6da"/>`);
  // The dig where the line passes through it, over its depth range.
  for (const [a, b] of s.digs) {
    parts.push(`<rect class="dig" x="${x(a).toFixed(1)}" y="${y(dig.top).toFixed(1)}" width="${(x(b) - x(a)).toFixed(1)}" height="${(y(dig.bottom) - y(dig.top)).toFixed(1)}" fill="#0b5cad" fill-opacity="0.18" stroke="#0b5cad" stroke-dasharray="4 2"><title>${esc(t('section_dig', { top: f2(dig.top), bottom: f2(dig.bottom) }))}</title></rect>`);
  }
  // Axes and grid.
  const xs = niceStep(s.length || 1, 8);
  for (let m = 0; m <= s.length + 1e-9; m += xs) {
    parts.push(`<line x1="${x(m).toFixed(1)}" y1="${T}" x2="${x(m).toFixed(1)}" y2="${H - B}" stroke="#0001"/>`
      + `<text x="${x(m).toFixed(1)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${m.toFixed(xs < 1 ? 1 : 0)}</text>`);
  }
  const ys = niceStep(deepest, 6);
  for (let d = 0; d <= deepest + 1e-9; d += ys) {
    parts.push(`<line x1="${L}" y1="${y(d).toFixed(1)}" x2="${W - R}" y2="${y(d).toFixed(1)}" stroke="#0001"/>`
      + `<text x="${L - 4}" y="${(y(d) + 3).toFixed(1)}" font-size="10" text-anchor="end">${d.toFixed(ys < 1 ? 1 : 0)}</text>`);
  }
  parts.push(`<line x1="${L}" y1="${T}" x2="${W - R}" y2="${T}" stroke="#5b4a32" stroke-width="2"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" font-size="11" text-anchor="middle">${esc(t('distance_along_m'))}</text>`);
  parts.push(`<text x="12" y="${(T + H - B) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 12 ${(T + H - B) / 2})">${esc(t('depth_m'))}</text>`);
  // Pipes: a disc of their size (at least 4 px) whose top is at their depth.
  const yPerM = (H - T - B) / deepest;
  for (const r of s.rows) {
    const rgb = colourOf(r.kind);
    const fill = `rgb(${rgb.join(',')})`;
    const name = `${tv('kind', r.kind)} #${r.id}`;
    const cx = x(r.distance);
    if (!r.known) {
      parts.push(`<g class="pipe unknown" data-pipeline-id="${r.id}" data-distance-m="${r.distance.toFixed(3)}">`
        + `<title>${esc(`${name} · ${t('distance')} ${f2(r.distance)} m · ${t('depth_unknown')}`)}</title>`
        + `<path d="M${cx.toFixed(1)},${T + 2} l-5,9 h10 z" fill="${fill}" fill-opacity="0.5" stroke="#333" stroke-dasharray="2 1"/>`
        + `<text x="${cx.toFixed(1)}" y="${T + 22}" font-size="9" text-anchor="middle" fill="#555">${esc(t('depth_unknown'))}</text></g>`);
      continue;
    }
    const size = r.size ?? 0.2;
    const cy = y(r.depth + size / 2);
    const rad = Math.max(4, (size / 2) * yPerM);
    let env = '';
    const c = r.conflict;
    if (c) {
      const hx = (c.required_clearance_m ?? 0) / (s.length || 1) * (W - L - R);
      const vy = (c.required_vertical_m ?? 0) * yPerM;
      const col = c.severity === 'violation' ? '#d00000' : c.severity === 'warning' ? '#ff8c00' : '#1e78ff';
      env = `<rect class="clearance" x="${(cx - hx).toFixed(1)}" y="${(y(r.depth) - vy).toFixed(1)}" width="${(2 * hx).toFixed(1)}" height="${(size * yPerM + 2 * vy).toFixed(1)}" fill="none" stroke="${col}" stroke-dasharray="3 2">`
        + `<title>${esc(`${tv('sev', c.severity)} · ${t('required')} ${f2(c.required_clearance_m ?? 0)} m${c.required_vertical_m != null ? ` / ${f2(c.required_vertical_m)} m` : ''}`)}</title></rect>`;
    }
    parts.push(`<g class="pipe" data-pipeline-id="${r.id}" data-distance-m="${r.distance.toFixed(3)}" data-depth-m="${r.depth.toFixed(3)}">`
      + `<title>${esc(`${name} · ${t('distance')} ${f2(r.distance)} m · ${t('depth_top')} ${f2(r.depth)} m${r.sizeKnown ? ` · ${t('size')} ${Math.round(size * 1000)} mm` : ''}`)}</title>`
      + env
      + `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="${rad.toFixed(1)}" fill="${fill}" stroke="#222"/>`
      + `<text x="${(cx + rad + 2).toFixed(1)}" y="${(cy - rad).toFixed(1)}" font-size="9" fill="#333">${esc(`#${r.id} ${f2(r.depth)}`)}</text></g>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(t('section_title'))}" class="section-svg" data-length-m="${s.length.toFixed(3)}">`
    + `<desc>${esc(t('section_title'))} · ${s.rows.length} · ${s.length.toFixed(1)} m</desc>${parts.join('')}</svg>`;
}
