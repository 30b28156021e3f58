// Lifeline web client: session (API key → role via GET /me), the map (MapLibre GL JS from
// web/vendor, built from npm; the service's own styles and tiles only), the three views
// (network, risk one map, excavation check), search by id and navigation by the grid
// hierarchy's real names. Views live in their own modules; this one wires them together.

import * as maplibregl from '../vendor/maplibre-gl/maplibre-gl.mjs';
import { api, ApiError, getKey, roleAtLeast, setKey, syncClock } from './api.js';
import { apply, currentLang, onLang, setLang, t, tv } from './i18n.js';
import { initNetwork } from './network.js';
import { initRisk } from './risk.js';
import { initExcavation } from './excavation.js';
import { initTrace } from './trace.js';
import { initUnderground } from './underground.js';
import { esc, featureBounds, popupHtml } from './util.js';
import * as datum from './datum.js';

const $ = (id) => document.getElementById(id);

/** Shared state handed to the views. */
const app = {
  maplibregl,
  map: null,
  me: { role: 'viewer', name: 'anonymous', authenticated: false },
  view: 'network',
  /** Per view: which map layers it shows. */
  viewLayers: {},
  /** Click handlers by layer id, tried in order (top layer first). */
  clickers: [],
  popup: null,
  toast,
  can: (role) => roleAtLeast(app.me.role, role),
  /** Whether the service documents `path` (OpenAPI), e.g. `/alarms`. */
  has: (path) => app.paths?.has(path) ?? false,
  setView,
  datum,
};
window.lifeline = app; // for the end-to-end test and for debugging from the console

/** A short notice; with `action` ({label, run}) it carries a button and stays longer. */
function toast(text, kind = '', action = null) {
  const el = $('toast');
  el.textContent = text;
  if (action) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'toast-action';
    b.textContent = action.label;
    b.addEventListener('click', () => { el.className = 'toast'; action.run(); });
    el.append(' ', b);
  }
  el.className = `toast show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = 'toast'; }, action ? 15000 : 4000);
}

// ---- session -------------------------------------------------------------------------

async function whoAmI() {
  try {
    app.me = await api('/me');
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      if (getKey()) setKey(null); // a revoked key: forget it and fall back
      try { app.me = await api('/me'); return true; } catch { /* anonymous access off */ }
      app.me = { role: null, name: '', authenticated: false };
      return false;
    }
    throw e;
  }
}

function renderSession() {
  const r = app.me.role;
  $('whoami').textContent = r
    ? `${app.me.authenticated ? app.me.name : t('anonymous')} · ${tv('role', r)}`
    : '';
  $('login-open').hidden = app.me.authenticated;
  $('logout').hidden = !app.me.authenticated;
  for (const el of document.querySelectorAll('[data-min-role]')) {
    el.hidden = !r || !roleAtLeast(r, el.dataset.minRole);
  }
  const lb = $('lang');
  lb.textContent = currentLang() === 'zh' ? 'EN' : '中文';
  lb.lang = currentLang() === 'zh' ? 'en' : 'zh-CN';
  lb.setAttribute('aria-label', currentLang() === 'zh' ? 'Switch to English' : '切换到中文');
}

function openLogin() {
  $('login-error').textContent = '';
  $('login-key').value = '';
  $('login-dialog').showModal();
  $('login-key').focus();
}

async function login(key) {
  try {
    const me = await api('/me', { key });
    setKey(key);
    app.me = me;
    return true;
  } catch (e) {
    $('login-error').textContent = e instanceof ApiError && e.status === 401 ? t('login_failed') : String(e.message);
    return false;
  }
}

// ---- views ---------------------------------------------------------------------------

function setView(view) {
  if (view === 'excavation' && !app.can('contractor')) view = 'network';
  app.view = view;
  for (const b of document.querySelectorAll('.views [role=tab]')) {
    const on = b.dataset.view === view;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
  }
  for (const p of document.querySelectorAll('.view-panel')) p.hidden = p.id !== `panel-${view}`;
  if (app.map?.isStyleLoaded()) {
    app.popup?.remove();
    app.map.getSource('highlight')?.setData({ type: 'FeatureCollection', features: [] });
    applyVisibility();
  }
  history.replaceState(null, '', `#${view}`);
  for (const f of app.onViewChange ?? []) f(view);
}

function applyVisibility() {
  const shown = new Set(app.viewLayers[app.view] ?? []);
  const all = new Set(Object.values(app.viewLayers).flat());
  for (const id of all) {
    if (!app.map.getLayer(id)) continue;
    app.map.setLayoutProperty(id, 'visibility', shown.has(id) ? 'visible' : 'none');
  }
}
app.applyVisibility = applyVisibility;

// ---- map -----------------------------------------------------------------------------

/** Our two styles merged into one map: network (grid cells + pipelines) and risk (risk
 * points + sensors, as their own source so the network view never loads them). */
async function buildStyle() {
  const [net, risk] = await Promise.all([api('/styles/network.json'), api('/styles/risk.json')]);
  const netIds = new Set(net.layers.map((l) => l.id));
  // A risk point's live level (from `risk_level` events) overrides the tile's, as feature state.
  const live = (v) => {
    if (Array.isArray(v)) return v[0] === 'get' && v[1] === 'level' && v.length === 2 ? ['coalesce', ['feature-state', 'level'], v] : v.map(live);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, live(x)]));
    return v;
  };
  // The style's live layers (grid_stats choropleth, alarm_density heat-map) keep their own
  // uncached source; this client draws its choropleth from /risk/grid-stats itself, so they
  // start hidden here.
  const fromRisk = (l) => (l.source !== 'lifeline'
    ? { ...l, layout: { ...(l.layout || {}), visibility: 'none' } }
    : l['source-layer'] === 'grid_cells'
      ? { ...l, source: 'lifeline' }
      : { ...l, source: 'risk', paint: l['source-layer'] === 'risk_points' ? live(l.paint) : l.paint });
  const liveSources = Object.fromEntries(Object.entries(risk.sources).filter(([k]) => k !== 'lifeline'));
  const extra = risk.layers.filter((l) => !netIds.has(l.id)).map(fromRisk);
  const below = extra.filter((l) => l.type === 'fill'); // grid fill, risk areas: under the lines
  const above = extra.filter((l) => l.type !== 'fill'); // sensor and risk-point circles: on top
  const [bg, ...rest] = net.layers;
  const style = {
    ...net,
    sources: {
      ...net.sources,
      ...liveSources,
      risk: { ...risk.sources.lifeline, url: risk.sources.lifeline.url.replace(/\/tiles\/[^/]+\.json$/, '/tiles/risk_points,sensors.json') },
    },
    layers: [bg, ...below, ...rest, ...above],
  };
  // The optional raster basemap of the service's configuration, right above the
  // background and under everything of ours.
  const bm = app.clientConfig?.basemap;
  if (bm) {
    style.sources.basemap = { type: 'raster', tiles: [bm.url.startsWith('/') ? location.origin + bm.url : bm.url],
      tileSize: bm.tile_size ?? 256, maxzoom: bm.max_zoom ?? 18, attribution: bm.attribution ? esc(bm.attribution) : undefined };
    style.layers.splice(1, 0, { id: 'basemap', type: 'raster', source: 'basemap' });
  }
  return { style, net, risk };
}

async function startMap() {
  const { style, net, risk } = await buildStyle();
  app.styles = { network: net, risk };
  // Tiles come from the service, or from its configured public URL: both get the key.
  const ours = [location.origin, new URL(net.sources.lifeline.url, location.href).origin];
  const params = new URLSearchParams(location.search);
  const map = new maplibregl.Map({
    container: 'map',
    style,
    center: style.center ?? [106.55, 29.56],
    zoom: style.zoom ?? 11,
    attributionControl: { compact: true },
    // Only our own service: the key goes on our requests, nothing else is fetched.
    transformRequest: (url) => {
      const k = getKey();
      if (!ours.some((o) => url.startsWith(`${o}/`))) return { url };
      // Over a GCJ-02 basemap our tiles are cut in GCJ-02 (see datum.js).
      const u = datum.tileUrl(url);
      return k ? { url: u, headers: { Authorization: `Bearer ${k}` } } : { url: u };
    },
    // Text (grid names) is drawn locally from system fonts: the style has no glyphs URL.
    localIdeographFontFamily: '"Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", sans-serif',
    canvasContextAttributes: { preserveDrawingBuffer: params.has('screenshot') },
  });
  app.map = map;
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.getCanvas().setAttribute('aria-label', t('map_label'));
  await new Promise((r) => map.once('load', r));
  // Start where this browser left off; the first time, on the whole network.
  const saved = savedView();
  if (saved) map.jumpTo(saved);
  else {
    try {
      const { layers } = await api('/layers');
      const b = layers.find((l) => l.id === 'pipelines')?.bbox ?? layers.find((l) => l.bbox)?.bbox;
      if (b) map.fitBounds([datum.toDisplay([b[0], b[1]]), datum.toDisplay([b[2], b[3]])], { animate: false, padding: 20 });
    } catch { /* keep the style's centre */ }
  }
  return map;
}

// The last view, per browser (localStorage), per service origin and display datum; the 3D
// view's tilted camera is not kept (it is left by closing the view).
const VIEW_KEY = () => `lifeline.view.${datum.datum()}`;
function savedView() {
  try {
    const v = JSON.parse(localStorage.getItem(VIEW_KEY()) ?? 'null');
    const ok = v && Array.isArray(v.center) && v.center.every(Number.isFinite) && Number.isFinite(v.zoom);
    return ok ? { center: v.center, zoom: v.zoom, bearing: Number(v.bearing) || 0, pitch: 0 } : null;
  } catch { return null; }
}
function keepView(map) {
  let timer = null;
  map.on('moveend', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (app.view3dActive) return;
      const c = map.getCenter();
      try {
        localStorage.setItem(VIEW_KEY(), JSON.stringify({ center: [c.lng, c.lat], zoom: map.getZoom(), bearing: map.getBearing() }));
      } catch { /* storage full or disabled: nothing to keep */ }
    }, 500);
  });
}
app.forgetView = () => localStorage.removeItem(VIEW_KEY());

// ---- popups and search -----------------------------------------------------------------

async function showRecord(layer, id, lngLat) {
  const f = await api(`/features/${layer}/${id}`);
  let extra = '';
  if (layer === 'pipelines' && f.properties?.owner_id && app.can('contractor')) {
    try {
      const o = await api(`/features/owners/${f.properties.owner_id}`);
      extra = `<dl class="kv"><dt>${t('owner')}</dt><dd>${esc(o.properties.name)}</dd>`
        + `<dt>${t('emergency_contact')}</dt><dd>${esc(o.properties.emergency_contact)}</dd>`
        + `<dt>${t('emergency_phone')}</dt><dd>${esc(o.properties.emergency_phone)}</dd></dl>`;
    } catch { /* owner not readable */ }
  }
  // Traces need the analyst role, and a pipe that names its end nodes.
  if (layer === 'pipelines' && app.can('analyst') && f.properties?.from_node) {
    extra += `<button type="button" class="trace-isolate" data-pipe="${esc(f.id)}">${esc(t('trace_isolate'))}</button>`;
  }
  const html = popupHtml(layer, f, t, tv) + extra;
  openPopup(lngLat, html);
  return f;
}
app.showRecord = showRecord;

function openPopup(lngLat, html) {
  app.popup?.remove();
  app.popup = new maplibregl.Popup({ maxWidth: '340px', focusAfterOpen: true })
    .setLngLat(lngLat).setHTML(html).addTo(app.map);
  return app.popup;
}
app.openPopup = openPopup;


async function search(layer, idText) {
  const id = Number(idText);
  if (!Number.isInteger(id) || id <= 0) { toast(t('not_found', { what: idText }), 'error'); return; }
  try {
    const f = datum.geoToDisplay(await api(`/features/${layer}/${id}`));
    const b = featureBounds(f.geometry);
    if (b) {
      app.map.fitBounds(b, { maxZoom: 17, padding: 60, duration: 600 });
      const src = app.map.getSource('highlight');
      src?.setData({ type: 'FeatureCollection', features: [f] });
      await showRecord(layer, id, [(b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2]);
    }
  } catch (e) {
    toast(e instanceof ApiError && e.status === 404 ? t('not_found', { what: `${tv('layer', layer)} ${id}` }) : e.message, 'error');
  }
}

function addClientLayers(map) {
  map.addSource('highlight', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'highlight-line', type: 'line', source: 'highlight',
    paint: { 'line-color': '#ffb000', 'line-width': 6, 'line-opacity': 0.7 } });
  map.addLayer({ id: 'highlight-point', type: 'circle', source: 'highlight', filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-radius': 12, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#ffb000', 'circle-stroke-width': 3 } });
}

function wireClicks(map) {
  const handle = async (point, lngLat) => {
    for (const c of app.clickers) {
      if (!c.views.includes(app.view)) continue;
      const layers = c.layers.filter((l) => map.getLayer(l) && map.getLayoutProperty(l, 'visibility') !== 'none');
      if (!layers.length) continue;
      const box = [[point.x - 4, point.y - 4], [point.x + 4, point.y + 4]];
      const hits = map.queryRenderedFeatures(box, { layers });
      if (hits.length) {
        try { await c.onClick(hits[0], lngLat); } catch (e) { toast(e.message, 'error'); }
        return;
      }
    }
  };
  // In the 3D view a click picks a tube (deck.gl's own picking, underground.js).
  map.on('click', (e) => { if (!app.drawing && !app.view3dActive) handle(e.point, e.lngLat); });
  // Keyboard: Enter on the focused map opens what is at its centre.
  map.getCanvas().addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || app.drawing || e.defaultPrevented) return;
    const c = map.getCanvas();
    const p = { x: c.clientWidth / 2, y: c.clientHeight / 2 };
    handle(p, map.unproject([p.x, p.y]));
  });
  for (const c of app.clickers) {
    for (const l of c.layers) {
      map.on('mouseenter', l, () => { if (!app.drawing) map.getCanvas().style.cursor = 'pointer'; });
      map.on('mouseleave', l, () => { if (!app.drawing) map.getCanvas().style.cursor = ''; });
    }
  }
}

// ---- navigation by grid names ----------------------------------------------------------

async function loadNavigation() {
  const status = $('nav-status');
  status.textContent = t('nav_loading');
  const keep = new Set(['district', 'street', 'community']);
  const cells = [];
  const add = (f) => {
    if (keep.has(f.properties.level)) {
      cells.push({ id: f.id ?? f.properties.id, name: f.properties.name, level: f.properties.level,
        parent: f.properties.parent_id, bounds: featureBounds(datum.geoToDisplay(f.geometry)) });
    }
  };
  try {
    // OGC API – Features with a CQL2 filter: only the named levels (a few hundred cells of
    // a district instead of tens of thousands).
    const filter = encodeURIComponent("level IN ('district','street','community')");
    const page = await api(`/ogc/collections/grid_cells/items?filter=${filter}&limit=10000`);
    page.features.forEach(add);
  } catch {
    // Without the OGC API: every cell, paged, keeping the named levels.
    cells.length = 0;
    for (let offset = 0; ; offset += 5000) {
      const page = await api(`/features/grid_cells?limit=5000&offset=${offset}`);
      page.features.forEach(add);
      if (page.features.length < 5000) break;
    }
  }
  app.nav = cells;
  status.textContent = t('nav_loaded', { n: cells.length });
  fillNav('nav-district', cells.filter((c) => c.level === 'district'));
  return cells;
}

function fillNav(selectId, cells) {
  const sel = $(selectId);
  sel.replaceChildren(new Option(t('choose'), ''));
  const coll = new Intl.Collator(currentLang() === 'zh' ? 'zh-CN' : 'en');
  for (const c of [...cells].sort((a, b) => coll.compare(a.name, b.name))) sel.add(new Option(c.name, c.id));
  sel.disabled = cells.length === 0;
}

function wireNavigation() {
  const go = (id) => {
    const c = app.nav?.find((x) => String(x.id) === String(id));
    if (c?.bounds) app.map.fitBounds(c.bounds, { padding: 30, duration: 700 });
  };
  $('nav-district').addEventListener('change', (e) => {
    const id = e.target.value;
    fillNav('nav-street', id ? app.nav.filter((c) => c.level === 'street' && String(c.parent) === id) : []);
    fillNav('nav-community', []);
    if (id) go(id);
  });
  $('nav-street').addEventListener('change', (e) => {
    const id = e.target.value;
    fillNav('nav-community', id ? app.nav.filter((c) => c.level === 'community' && String(c.parent) === id) : []);
    if (id) go(id);
  });
  $('nav-community').addEventListener('change', (e) => { if (e.target.value) go(e.target.value); });
}

// ---- start -----------------------------------------------------------------------------

async function main() {
  apply();
  $('lang').addEventListener('click', () => setLang(currentLang() === 'zh' ? 'en' : 'zh'));
  onLang(() => {
    renderSession();
    app.map?.getCanvas().setAttribute('aria-label', t('map_label'));
    app.popup?.remove(); // its labels were written in the other language
    for (const id of ['nav-district', 'nav-street', 'nav-community']) {
      const first = $(id).options[0];
      if (first && !first.value) first.textContent = t('choose');
    }
    if (app.nav) $('nav-status').textContent = t('nav_loaded', { n: app.nav.length });
  });
  $('login-open').addEventListener('click', openLogin);
  $('login-cancel').addEventListener('click', () => $('login-dialog').close());
  $('logout').addEventListener('click', () => { setKey(null); location.reload(); });
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await login($('login-key').value.trim())) location.reload();
  });
  // Tabs: click, and arrow keys between them (WAI-ARIA tabs pattern).
  const tabs = [...document.querySelectorAll('.views [role=tab]')];
  for (const b of tabs) {
    b.addEventListener('click', () => setView(b.dataset.view));
    b.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      const vis = tabs.filter((x) => !x.hidden);
      const i = vis.indexOf(b) + (e.key === 'ArrowRight' ? 1 : -1);
      const next = vis[(i + vis.length) % vis.length];
      next.focus();
      setView(next.dataset.view);
    });
  }
  $('search').addEventListener('submit', (e) => { e.preventDefault(); search($('search-layer').value, $('search-id').value.trim()); });

  const ok = await whoAmI();
  renderSession();
  if (!ok) { openLogin(); return; }
  // What this service offers (the risk and excavation APIs may be absent on a deployment):
  // the views ask before calling, so a missing API is a notice, not a failed request.
  const [doc] = await Promise.all([api('/openapi.json'), syncClock()]);
  app.paths = new Set(Object.keys(doc.paths ?? {}));
  // The optional basemap, and the datum our layers must be drawn in over it.
  if (app.has('/client-config')) {
    try {
      app.clientConfig = await api('/client-config');
      datum.setDatum(app.clientConfig.basemap?.datum);
    } catch (e) { toast(`${t('error')}: ${e.message}`, 'error'); }
  }

  const map = await startMap();
  addClientLayers(map);
  app.onViewChange = [];
  initNetwork(app);
  initRisk(app);
  initExcavation(app);
  initTrace(app);
  initUnderground(app);
  wireClicks(map);
  keepView(map);
  wireNavigation();
  const initial = location.hash.replace(/^#/, '').split('&')[0];
  setView(['network', 'risk', 'excavation'].includes(initial) ? initial : 'network');
  applyVisibility();
  document.body.dataset.ready = 'true';
  loadNavigation().catch((e) => { $('nav-status').textContent = `${t('error')}: ${e.message}`; });
}

main().catch((e) => {
  console.error(e);
  toast(`${t('error')}: ${e.message}`, 'error');
});
