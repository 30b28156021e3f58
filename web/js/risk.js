// The risk one map: risk points coloured by level (from the service's risk style), sensors,
// a per-grid choropleth of `GET /risk/grid-stats`, the alarm list of `GET /alarms` with
// lifecycle actions for the roles the service allows, alarms arriving live from
// `GET /events` (a pulse on the map and a flash in the list; a published trace as a notice
// that opens it, and an "isolate" action on open leak alarms), and sensor popups with a
// sparkline of the last 24 hours of `GET /sensors/{id}/readings`.

import { api, ApiError, followEvents, serverNow } from './api.js';
import { onLang, t, tv } from './i18n.js';
import { matchPairs } from './network.js';
import { esc, sparkline } from './util.js';
import { toDisplay } from './datum.js';

/** Sensor kinds whose alarm may mean a leak (the service's `LEAK_SIGNALS`). */
const LEAK_SIGNALS = ['gas_lel', 'pressure', 'flow'];

/** The lifecycle (data/rules/alarms.toml): next statuses from each, with the least role. */
const NEXT = {
  detected: [['verified', 'analyst'], ['false_alarm', 'analyst']],
  verified: [['dispatched', 'operator'], ['false_alarm', 'analyst']],
  dispatched: [['handled', 'operator'], ['false_alarm', 'analyst']],
  handled: [['closed', 'operator']],
};
const state = ['coalesce', ['feature-state', 'value'], 0];
const RISK_RAMP = ['interpolate', ['linear'], state, 0, 'rgba(255,255,255,0)', 0.01, '#fff5e6', 0.5, '#fd8d3c', 1, '#bd0026'];
const COVERAGE_RAMP = ['interpolate', ['linear'], state, 0, 'rgba(255,255,255,0)', 0.01, '#d7301f', 0.5, '#fdcc8a', 1, '#1a9850'];
const RANK = { emergency: 3, alarm: 2, notice: 1 };
const STATUS_ZH = { detected: '已发现', verified: '已核实', dispatched: '已派单', handled: '已处置', closed: '已关闭', false_alarm: '误报' };
const SEVERITY_ZH = { notice: '提示', alarm: '告警', emergency: '紧急' };
const ACTION_ZH = { verified: '核实', dispatched: '派单', handled: '处置完成', closed: '关闭', false_alarm: '标为误报' };
const ACTION_EN = { verified: 'Verify', dispatched: 'Dispatch', handled: 'Mark handled', closed: 'Close', false_alarm: 'False alarm' };

export function initRisk(app) {
  const { map, maplibregl } = app;
  const lang = () => document.documentElement.lang.startsWith('zh');
  const st = (s) => (lang() ? STATUS_ZH[s] ?? s : s.replace('_', ' '));
  const sev = (s) => (lang() ? SEVERITY_ZH[s] ?? s : s);
  const risk = app.styles.risk;
  const riskLayerIds = risk.layers.filter((l) => l['source-layer'] === 'risk_points').map((l) => l.id);
  const sensorLayerIds = risk.layers.filter((l) => l['source-layer'] === 'sensors').map((l) => l.id);
  const gridLayerIds = app.styles.network.layers.filter((l) => l['source-layer'] === 'grid_cells').map((l) => l.id);
  const gridFill = risk.layers.filter((l) => l['source-layer'] === 'grid_cells' && l.type === 'fill').map((l) => l.id);

  // Choropleth: the service's grid statistics as feature state on the grid tiles' cells.
  map.addLayer({
    id: 'grid-choropleth',
    type: 'fill',
    source: 'lifeline',
    'source-layer': 'grid_cells',
    filter: ['==', ['get', 'level'], ''],
    paint: { 'fill-color': RISK_RAMP, 'fill-opacity': 0.55 },
  }, gridLayerIds[0]);

  // Active alarms as a GeoJSON layer (so they can be queried like any feature).
  map.addSource('alarms', { type: 'geojson', data: { type: 'FeatureCollection', features: [] }, promoteId: 'id' });
  map.addLayer({
    id: 'alarms',
    type: 'circle',
    source: 'alarms',
    paint: {
      'circle-radius': 9,
      'circle-color': ['match', ['get', 'severity'], 'emergency', '#e60000', 'alarm', '#ff8c00', '#ffd700'],
      'circle-stroke-color': '#000',
      'circle-stroke-width': 1.5,
    },
  });

  app.viewLayers.risk = [...gridFill, 'grid-choropleth', ...gridLayerIds, 'grid-cells-names',
    ...riskLayerIds, ...sensorLayerIds, 'alarms', 'highlight-line', 'highlight-point'];

  const alarms = new Map();
  const markers = new Map();

  function renderLegend() {
    const main = risk.layers.find((l) => l.id === riskLayerIds[riskLayerIds.length - 1]);
    const { pairs } = matchPairs(main?.paint?.['circle-color']);
    document.getElementById('risk-legend').replaceChildren(...pairs.map(([level, colour]) => {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'swatch dot';
      sw.style.background = colour;
      sw.setAttribute('aria-hidden', 'true');
      li.append(sw, document.createTextNode(tv('risk', level)));
      return li;
    }));
  }

  function syncAlarmLayer() {
    const features = [...alarms.values()]
      .filter((a) => a.status !== 'closed' && a.status !== 'false_alarm')
      .map((a) => ({ type: 'Feature', id: a.id, geometry: { type: 'Point', coordinates: toDisplay([a.lon, a.lat]) },
        properties: { id: a.id, severity: a.severity, status: a.status, sensor_id: a.sensor_id } }));
    map.getSource('alarms').setData({ type: 'FeatureCollection', features });
  }

  function renderAlarms(freshId) {
    const filter = document.getElementById('alarm-filter').value;
    const ul = document.getElementById('alarm-list');
    const list = [...alarms.values()]
      .filter((a) => filter !== 'open' || (a.status !== 'closed' && a.status !== 'false_alarm'))
      // Most severe first (an emergency is not buried under offline notices), then newest.
      .sort((a, b) => (RANK[b.severity] ?? 0) - (RANK[a.severity] ?? 0) || (b.updated_at ?? '').localeCompare(a.updated_at ?? ''))
      .slice(0, 200);
    ul.replaceChildren(...list.map((a) => {
      const li = document.createElement('li');
      li.className = `sev-${a.severity}${a.id === freshId ? ' fresh' : ''}`;
      li.dataset.alarmId = a.id;
      const title = document.createElement('button');
      title.type = 'button';
      title.className = 'linkish';
      title.textContent = `#${a.id} · ${sev(a.severity)} · ${tv('val', a.sensor_kind ?? '')} · ${st(a.status)}`;
      title.addEventListener('click', () => {
        const at = toDisplay([a.lon, a.lat]);
        map.flyTo({ center: at, zoom: Math.max(map.getZoom(), 16) });
        showSensor(a.sensor_id, at);
      });
      const meta = document.createElement('div');
      meta.className = 'meta';
      meta.textContent = `${new Date(a.detected_at).toLocaleString(lang() ? 'zh-CN' : 'en')}`
        + `${a.value != null ? ` · ${a.value}` : ''} · ${t('layer_sensors')} ${a.sensor_id}`;
      li.append(title, meta);
      const actions = (NEXT[a.status] ?? []).filter(([, role]) => app.can(role));
      // An open leak alarm links to its pipe's isolation (the service says when it has none).
      const isolate = app.can('analyst') && LEAK_SIGNALS.includes(a.sensor_kind)
        && a.status !== 'closed' && a.status !== 'false_alarm' && app.has('/alarms/{id}/isolation');
      if (actions.length || isolate) {
        const div = document.createElement('div');
        div.className = 'btns';
        for (const [to] of actions) {
          const b = document.createElement('button');
          b.type = 'button';
          b.dataset.to = to;
          b.textContent = (lang() ? ACTION_ZH : ACTION_EN)[to];
          b.addEventListener('click', () => transition(a.id, to));
          div.append(b);
        }
        if (isolate) {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'alarm-isolate';
          b.textContent = t('alarm_isolate');
          b.addEventListener('click', () => app.traceAlarm?.(a.id));
          div.append(b);
        }
        li.append(div);
      }
      return li;
    }));
    if (!list.length) ul.replaceChildren(Object.assign(document.createElement('li'), { textContent: t('no_alarms') }));
  }

  async function transition(id, to) {
    try {
      const a = await api(`/alarms/${id}/transitions`, { method: 'POST', body: { to } });
      upsert(a.alarm ?? a);
      app.toast(t('transition_done', { id, to: st(to) }));
    } catch (e) {
      app.toast(e.message, 'error');
    }
  }

  // Events can come in bursts (the offline rule raises one alarm per silent sensor, tens of
  // thousands in a district): the map layer and the list are redrawn at most every 100 ms.
  let pending = null;
  let freshest;
  function upsert(a, fresh = false) {
    if (!a || a.id == null) return;
    alarms.set(a.id, a);
    if (fresh) freshest = a.id;
    if (fresh && a.status !== 'closed' && a.status !== 'false_alarm' && a.severity !== 'notice') pulse(a);
    pending ??= setTimeout(() => {
      pending = null;
      syncAlarmLayer();
      renderAlarms(freshest);
      freshest = undefined;
    }, 100);
  }

  function pulse(a) {
    if (markers.size >= 50 && !markers.has(a.id)) return; // a pulse is for attention, not a census
    markers.get(a.id)?.remove();
    const el = document.createElement('div');
    el.className = 'pulse';
    el.dataset.alarmId = a.id;
    el.title = `#${a.id}`;
    const m = new maplibregl.Marker({ element: el }).setLngLat(toDisplay([a.lon, a.lat])).addTo(map);
    markers.set(a.id, m);
    setTimeout(() => { m.remove(); markers.delete(a.id); }, 30000);
  }

  async function loadAlarms() {
    const status = document.getElementById('alarm-status');
    if (!app.has('/alarms')) { status.textContent = t('not_available', { what: 'GET /alarms' }); return; }
    try {
      const open = document.getElementById('alarm-filter').value === 'open';
      const body = await api(`/alarms?limit=500${open ? '&status=open' : ''}`);
      for (const a of body.alarms ?? []) alarms.set(a.id, a);
      syncAlarmLayer();
      renderAlarms();
      status.textContent = '';
    } catch (e) {
      status.textContent = e instanceof ApiError && e.status === 404 ? t('not_available', { what: 'GET /alarms' }) : e.message;
    }
  }

  const live = document.getElementById('live');
  if (!app.has('/events')) live.textContent = t('not_available', { what: 'GET /events' });
  else followEvents('/events', (type, data) => {
    if (type === 'alarm') {
      const a = data?.alarm ?? data;
      const isNew = !alarms.has(a.id);
      upsert(a, true);
      if (isNew) app.toast(t('new_alarm', { what: `#${a.id} ${sev(a.severity)}` }));
    }
    if (type === 'trace') app.onTracePublished?.(data);
    if (type === 'risk_level' && data?.id != null) {
      // A risk point's live level changed (alarms raise it): recolour it where it is drawn.
      map.setFeatureState({ source: 'risk', sourceLayer: 'risk_points', id: data.id }, { level: data.level });
    }
  }, (s) => {
    live.className = `live${s === 'open' ? ' on' : ''}`;
    live.textContent = s === 'open' ? t('live_on') : s === 'absent' ? t('not_available', { what: 'GET /events' }) : t('live_off');
    app.eventsState = s;
  });

  // ---- choropleth ----
  let stats = [];
  async function choropleth() {
    const level = document.getElementById('choro-level').value;
    const metric = document.getElementById('choro-metric').value;
    const status = document.getElementById('choro-status');
    for (const s of stats) map.removeFeatureState({ source: 'lifeline', sourceLayer: 'grid_cells', id: s.id });
    stats = [];
    map.setFilter('grid-choropleth', ['==', ['get', 'level'], level || '']);
    document.getElementById('choro-legend').hidden = true;
    if (!level) { status.textContent = ''; return; }
    if (!app.has('/risk/grid-stats')) { status.textContent = t('not_available', { what: 'GET /risk/grid-stats' }); return; }
    try {
      const body = await api(`/risk/grid-stats?level=${encodeURIComponent(level)}`);
      const rows = body.cells ?? [];
      // Risk: live levels weighted 4/3/2/1 (major…low), relative to the worst cell shown.
      // Coverage: the share of risk points with a working sensor; cells without risk points stay blank.
      const risk = (r) => 4 * (r.major ?? 0) + 3 * (r.large ?? 0) + 2 * (r.general ?? 0) + (r.low ?? 0);
      const max = Math.max(1e-9, ...rows.map(risk));
      stats = rows
        .filter((r) => metric !== 'coverage' || (r.risk_points ?? 0) > 0)
        .map((r) => ({ id: r.id, v: metric === 'coverage' ? Math.max(0.011, r.coverage ?? 0) : risk(r) / max }));
      map.setPaintProperty('grid-choropleth', 'fill-color', metric === 'coverage' ? COVERAGE_RAMP : RISK_RAMP);
      for (const s of stats) map.setFeatureState({ source: 'lifeline', sourceLayer: 'grid_cells', id: s.id }, { value: s.v });
      status.textContent = t('choro_cells', { n: stats.length });
      const lg = document.getElementById('choro-legend');
      const ramp = metric === 'coverage' ? COVERAGE_RAMP : RISK_RAMP;
      const stops = ramp.slice(5).filter((_, i) => i % 2 === 1); // colours after the blank 0 stop
      lg.querySelector('.bar').style.background = `linear-gradient(to right, ${stops.join(', ')})`;
      lg.querySelector('.lo').textContent = metric === 'coverage' ? '0 %' : t('risk_low');
      lg.querySelector('.hi').textContent = metric === 'coverage' ? '100 %' : t('risk_major');
      lg.hidden = false;
      app.choropleth = stats;
    } catch (e) {
      status.textContent = e instanceof ApiError && e.status === 404 ? t('not_available', { what: 'GET /risk/grid-stats' }) : e.message;
    }
  }
  document.getElementById('choro-level').addEventListener('change', choropleth);
  document.getElementById('choro-metric').addEventListener('change', choropleth);
  document.getElementById('alarm-filter').addEventListener('change', () => { renderAlarms(); loadAlarms(); });

  // ---- popups ----
  async function showSensor(id, lngLat) {
    await app.showRecord('sensors', id, lngLat);
    const to = new Date(serverNow());
    const from = new Date(to.getTime() - 24 * 3600 * 1000);
    let html;
    if (!app.has('/sensors/{id}/readings')) html = `<p class="muted">${esc(t('not_available', { what: 'GET /sensors/{id}/readings' }))}</p>`;
    else try {
      const range = `from=${from.toISOString()}&to=${to.toISOString()}`;
      // 15-minute means over the day; a sensor that reported only a few times gets its raw readings.
      let body = await api(`/sensors/${id}/readings?${range}&every=15m`);
      let rows = body.buckets ?? [];
      if (rows.length < 3) {
        body = await api(`/sensors/${id}/readings?${range}&limit=2000`);
        rows = body.readings ?? [];
      }
      const pts = rows.map((r) => [Date.parse(r.t), r.mean ?? r.value]).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
      html = `<p class="muted">${t('readings_24h')}${body.unit ? ` (${esc(body.unit)})` : ''}</p>${pts.length ? sparkline(pts) : `<p>${t('no_readings')}</p>`}`;
    } catch (e) {
      html = `<p class="muted">${esc(e.message)}</p>`;
    }
    const el = app.popup?.getElement()?.querySelector('.maplibregl-popup-content');
    if (el) el.insertAdjacentHTML('beforeend', `<div class="sensor-readings" data-sensor="${esc(id)}">${html}</div>`);
  }
  app.showSensor = showSensor;

  const cluster = (f, lngLat) => {
    if (f.properties.count > 1 || f.id == null) {
      map.easeTo({ center: lngLat, zoom: map.getZoom() + 2 });
      return true;
    }
    return false;
  };
  app.clickers.unshift(
    { views: ['risk'], layers: ['alarms'], onClick: (f, lngLat) => showSensor(f.properties.sensor_id, lngLat) },
    { views: ['risk'], layers: sensorLayerIds, onClick: (f, lngLat) => cluster(f, lngLat) || showSensor(f.id, lngLat) },
    { views: ['risk'], layers: riskLayerIds, onClick: (f, lngLat) => cluster(f, lngLat) || app.showRecord('risk_points', f.id, lngLat) },
  );
  app.clickers.push({ views: ['risk'], layers: gridLayerIds, onClick: (f, lngLat) => app.showRecord('grid_cells', f.id, lngLat) });

  renderLegend();
  onLang(() => { renderLegend(); renderAlarms(); });
  loadAlarms();
  app.alarms = alarms;
}
