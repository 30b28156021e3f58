// The excavation check (contractor and up): draw the dig area — a polygon, or a line plus a
// width — with the mouse or the keyboard, give depths, method, work type and dates, and
// `POST /excavation/check`; conflicting pipes are highlighted on the map by severity, with
// distances and required clearances in the panel, the owners to notify, the report as
// HTML or GeoJSON, and a ticket (`POST /excavation/tickets`) whose state is followed.
// Operators (the owners' duty desks) open any ticket by number and record an owner's
// response (`POST /excavation/tickets/{id}/responses`: marked, clear or partially marked,
// with a note). Positions are drawn in the display datum and sent in the service's
// (datum.js).

import { api, chinaDate, download } from './api.js';
import { onLang, t, tv } from './i18n.js';
import { esc, featureBounds } from './util.js';
import { geoToDisplay, geometryToData, toDisplay } from './datum.js';

const $ = (id) => document.getElementById(id);
const SEV_COLOUR = ['match', ['get', 'severity'], 'violation', '#d00000', 'warning', '#ff8c00', '#1e78ff'];

export function initExcavation(app) {
  const { map } = app;
  const empty = { type: 'FeatureCollection', features: [] };
  map.addSource('dig', { type: 'geojson', data: empty });
  map.addSource('dig-result', { type: 'geojson', data: empty });
  map.addLayer({ id: 'dig-fill', type: 'fill', source: 'dig', filter: ['==', ['geometry-type'], 'Polygon'],
    paint: { 'fill-color': '#0b5cad', 'fill-opacity': 0.15 } });
  map.addLayer({ id: 'dig-line', type: 'line', source: 'dig', filter: ['!=', ['geometry-type'], 'Point'],
    paint: { 'line-color': '#0b5cad', 'line-width': 2, 'line-dasharray': [3, 2] } });
  map.addLayer({ id: 'dig-vertices', type: 'circle', source: 'dig', filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-radius': 4, 'circle-color': '#fff', 'circle-stroke-color': '#0b5cad', 'circle-stroke-width': 2 } });
  // A dark casing under the severity colour, so a conflict stands out from pipes drawn in red.
  map.addLayer({ id: 'conflict-casing', type: 'line', source: 'dig-result',
    filter: ['all', ['==', ['geometry-type'], 'LineString'], ['has', 'severity']],
    layout: { 'line-cap': 'round' }, paint: { 'line-color': '#111', 'line-width': 10, 'line-opacity': 0.8 } });
  map.addLayer({ id: 'conflict-pipes', type: 'line', source: 'dig-result',
    filter: ['all', ['==', ['geometry-type'], 'LineString'], ['has', 'severity']],
    layout: { 'line-cap': 'round' }, paint: { 'line-color': SEV_COLOUR, 'line-width': 6 } });
  map.addLayer({ id: 'conflict-points', type: 'circle', source: 'dig-result',
    filter: ['all', ['==', ['geometry-type'], 'Point'], ['has', 'severity']],
    paint: { 'circle-radius': 5, 'circle-color': SEV_COLOUR, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5 } });
  app.viewLayers.excavation = [...app.pipeLayers, 'grid-cells-outline', 'dig-fill', 'dig-line', 'dig-vertices',
    'conflict-casing', 'conflict-pipes', 'conflict-points', 'highlight-line', 'highlight-point'];

  // Dates are China's civil dates by the service's clock, as the check judges them.
  $('dig-start').value = chinaDate();
  $('dig-end').value = chinaDate(7);

  let mode = null; // 'polygon' | 'line' while drawing
  let kind = null; // what was drawn
  let coords = [];
  let result = null;
  let ticketTimer = null;

  function geometry() {
    if (kind === 'polygon' && coords.length >= 3) return { type: 'Polygon', coordinates: [[...coords, coords[0]]] };
    if (kind === 'line' && coords.length >= 2) return { type: 'LineString', coordinates: coords };
    return null;
  }

  function redraw() {
    const features = coords.map((c) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: c }, properties: {} }));
    const k = mode ?? kind;
    if (k === 'polygon' && coords.length >= 3) features.push({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...coords, coords[0]]] } });
    else if (coords.length >= 2) features.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: coords } });
    map.getSource('dig').setData({ type: 'FeatureCollection', features });
    $('width-row').hidden = k === 'polygon';
    const status = $('draw-status');
    if (mode) status.textContent = `${t('drawing', { n: coords.length })} — ${t('draw_help')}`;
    else if (kind) status.textContent = t(kind === 'polygon' ? 'drawn_polygon' : 'drawn_line', { n: coords.length });
    else status.textContent = t('draw_help');
    $('draw-polygon').setAttribute('aria-pressed', String(mode === 'polygon'));
    $('draw-line').setAttribute('aria-pressed', String(mode === 'line'));
  }

  function start(m) {
    mode = m;
    kind = m;
    coords = [];
    app.drawing = true;
    map.doubleClickZoom.disable();
    map.getCanvas().style.cursor = 'crosshair';
    clearResult();
    redraw();
    map.getCanvas().focus();
  }

  function finish() {
    if (!mode) return;
    const need = mode === 'polygon' ? 3 : 2;
    if (coords.length < need) { cancel(); return; }
    mode = null;
    app.drawing = false;
    map.getCanvas().style.cursor = '';
    setTimeout(() => map.doubleClickZoom.enable(), 0);
    redraw();
  }

  function cancel() {
    mode = null;
    kind = null;
    coords = [];
    app.drawing = false;
    map.getCanvas().style.cursor = '';
    map.doubleClickZoom.enable();
    redraw();
  }

  function add(lngLat) {
    const p = [Number(lngLat.lng.toFixed(7)), Number(lngLat.lat.toFixed(7))];
    const last = coords[coords.length - 1];
    if (last && last[0] === p[0] && last[1] === p[1]) return; // the second click of a double-click
    coords.push(p);
    redraw();
  }

  map.on('click', (e) => { if (mode) add(e.lngLat); });
  map.on('dblclick', (e) => { if (mode) { e.preventDefault(); finish(); } });
  map.getCanvas().addEventListener('keydown', (e) => {
    if (!mode) return;
    if (e.key === 'Enter') { e.preventDefault(); finish(); }
    else if (e.key === 'Escape') { e.preventDefault(); cancel(); }
    else if (e.key === 'Backspace') { e.preventDefault(); coords.pop(); redraw(); }
    else if (e.key === ' ') { e.preventDefault(); add(map.getCenter()); }
  });
  $('draw-polygon').addEventListener('click', () => start('polygon'));
  $('draw-line').addEventListener('click', () => start('line'));
  $('draw-vertex').addEventListener('click', () => { if (!mode) start(kind ?? 'polygon'); add(map.getCenter()); });
  $('draw-finish').addEventListener('click', finish);
  $('draw-clear').addEventListener('click', () => { cancel(); clearResult(); });

  function request() {
    const g = geometry();
    if (!g) return null;
    const body = {
      geometry: geometryToData(g),
      top_depth_m: Number($('dig-top').value),
      bottom_depth_m: Number($('dig-bottom').value),
      method: $('dig-method').value,
      // Free text on the service's side: send the label the user chose, as it will read in reports.
      work_type: $('dig-work').selectedOptions[0].textContent.trim(),
      start_date: $('dig-start').value,
      end_date: $('dig-end').value,
    };
    if (g.type === 'LineString') body.width_m = Number($('dig-width').value);
    return body;
  }

  function clearResult() {
    result = null;
    map.getSource('dig-result')?.setData(empty);
    $('dig-result').hidden = true;
    $('dig-status').textContent = '';
  }

  const num = (v, unit = ' m') => (v == null || Number.isNaN(Number(v)) ? '–' : `${Number(v).toFixed(2)}${unit}`);

  function renderResult() {
    if (!result) return;
    const { json } = result;
    const conflicts = json.conflicts ?? [];
    const count = (s) => conflicts.filter((c) => c.severity === s).length;
    $('dig-summary').textContent = (conflicts.length
      ? t('n_conflicts', { n: conflicts.length, v: count('violation'), w: count('warning') })
      : t('no_conflicts')) + (json.summary?.text ? ` — ${json.summary.text}` : '');
    $('dig-conflicts').replaceChildren(...conflicts.map((c) => {
      const li = document.createElement('li');
      const pid = c.pipeline_id ?? c.id;
      li.className = `sev-${c.severity}`;
      li.tabIndex = 0;
      li.dataset.pipelineId = pid;
      const owner = c.owner?.name ?? c.owner_name ?? '';
      const rule = c.rule?.id ?? c.rule_id ?? c.rule ?? '';
      li.innerHTML = `<strong>${esc(tv('sev', c.severity))}</strong> · ${esc(tv('kind', c.kind))} #${esc(pid)}`
        + `${owner ? ` · ${esc(owner)}` : ''}<br><span class="muted">${t('distance')} ${num(c.horizontal_distance_m ?? c.distance_m)}`
        + ` · ${t('clearance_3d')} ${num(c.clearance_3d_m)} · ${t('required')} ${num(c.required_clearance_m ?? c.required_m)}`
        + `${c.widening_m != null ? ` · ${t('widening')} ${num(c.widening_m)}` : ''}${rule ? ` · ${t('rule')} ${esc(rule)}` : ''}</span>`;
      const focus = () => {
        const p = c.nearest_point?.coordinates ?? c.nearest_point;
        if (Array.isArray(p)) map.flyTo({ center: toDisplay(p), zoom: Math.max(map.getZoom(), 18) });
      };
      li.addEventListener('click', focus);
      li.addEventListener('keydown', (e) => { if (e.key === 'Enter') focus(); });
      return li;
    }));
    const owners = json.owners ?? json.owners_to_notify ?? [];
    $('dig-owners').replaceChildren(...owners.map((o) => {
      const li = document.createElement('li');
      li.textContent = [o.name, o.emergency_contact, o.emergency_phone].filter(Boolean).join(' · ');
      return li;
    }));
    $('dig-result').hidden = false;
  }

  async function check(e) {
    e?.preventDefault();
    const body = request();
    if (!body) { $('dig-status').textContent = t('need_area'); return; }
    if (!app.has('/excavation/check')) { $('dig-status').textContent = t('not_available', { what: 'POST /excavation/check' }); return; }
    $('dig-status').textContent = t('checking');
    try {
      const [json, geo] = await Promise.all([
        api('/excavation/check?format=json', { method: 'POST', body }),
        api('/excavation/check?format=geojson', { method: 'POST', body }),
      ]);
      result = { body, json, geo };
      // Conflicts as features with their severity (dig area and segments come with it).
      // (ids dropped: the report's are strings, which a GeoJSON source does not take)
      const features = (geo.features ?? []).filter((f) => f.properties && 'severity' in f.properties)
        .map((f) => ({ type: 'Feature', geometry: geoToDisplay(f.geometry), properties: f.properties }));
      map.getSource('dig-result').setData({ type: 'FeatureCollection', features });
      $('dig-status').textContent = '';
      renderResult();
      app.lastCheck = result;
      $('dig-summary').scrollIntoView({ block: 'nearest' });
    } catch (err) {
      $('dig-status').textContent = `${t('error')}: ${err.message}`;
    }
  }
  $('dig-form').addEventListener('submit', check);

  async function report(format, name, type) {
    if (!result) return;
    try {
      const res = await api(`/excavation/check?format=${format}`, { method: 'POST', body: result.body, raw: true });
      download(new Blob([await res.blob()], { type }), name);
    } catch (err) {
      app.toast(err.message, 'error');
    }
  }
  $('dl-html').addEventListener('click', () => report('html', 'excavation-report.html', 'text/html'));
  $('dl-geojson').addEventListener('click', () => report('geojson', 'excavation.geojson', 'application/geo+json'));
  // The checked dig in 3D: its prism, the pipes around it at their depths, the check's
  // conflicts with their clearances (underground.js).
  $('dig-3d').addEventListener('click', () => {
    if (result) app.view3d.openCheck(result.geo, result.body.width_m, t('view3d_dig_what')).catch((e) => app.toast(e.message, 'error'));
  });
  // A ticket's dig as submitted (its stored check as GeoJSON).
  $('ticket-3d').addEventListener('click', async () => {
    const id = $('ticket-view').dataset.ticketId;
    if (!id) return;
    try {
      const [tk, geo] = await Promise.all([api(`/excavation/tickets/${id}`), api(`/excavation/tickets/${id}?f=geojson`)]);
      const width = tk.width_m ?? tk.dig?.width_m ?? tk.check?.dig?.width_m ?? null;
      await app.view3d.openCheck(geo, width, t('view3d_ticket_what', { id }));
    } catch (e) {
      app.toast(e.message, 'error');
    }
  });

  // ---- tickets ----
  const when = (v) => (v ? new Date(v).toLocaleString(document.documentElement.lang) : null);
  async function follow(id) {
    clearTimeout(ticketTimer);
    try {
      const tk = await api(`/excavation/tickets/${id}`);
      const rows = [['id', tk.id], ['state', tv('val', tk.state)], ['requester', [tk.requester?.company, tk.requester?.name].filter(Boolean).join(' · ')],
        ['created_at', when(tk.created_at)], ['valid_until', when(tk.valid_until)]];
      for (const o of tk.owners ?? []) {
        rows.push([o.name, `${tv('val', o.status)} · ${t('due_at')} ${when(o.due_at)}${o.overdue ? ' ⚠' : ''}`
          + `${o.responder ? ` · ${t('responder')} ${o.responder}` : ''}${o.note ? ` · ${o.note}` : ''}`]);
      }
      $('ticket-state').replaceChildren(...rows.filter(([, v]) => v != null && v !== '').flatMap(([k, v]) => {
        const dt = document.createElement('dt'); dt.textContent = t(k);
        const dd = document.createElement('dd'); dd.textContent = String(v);
        return [dt, dd];
      }));
      $('ticket-view').hidden = false;
      $('ticket-view').dataset.ticketId = id;
      $('ticket-view').dataset.state = tk.state;
      showResponseForm(tk);
      if (!['closed', 'expired', 'cancelled'].includes(tk.state)) ticketTimer = setTimeout(() => follow(id), 10000);
    } catch (err) {
      app.toast(err.message, 'error');
    }
  }
  $('ticket-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!result) return;
    const requester = { name: $('ticket-requester').value.trim(), phone: $('ticket-phone').value.trim() };
    const company = $('ticket-company').value.trim();
    if (company) requester.company = company;
    const body = { ...result.body, requester, ticket_type: $('ticket-emergency').checked ? 'emergency' : 'normal' };
    // One key per checked dig and form content: a retry after a lost answer is the same ticket.
    const key = JSON.stringify(body);
    result.idem ??= {};
    result.idem[key] ??= crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    try {
      const tk = await api('/excavation/tickets', { method: 'POST', body, headers: { 'Idempotency-Key': result.idem[key] } });
      app.toast(t('ticket_submitted', { id: tk.id }));
      follow(tk.id);
    } catch (err) {
      app.toast(err.message, 'error');
    }
  });
  // Owner responses: operators only (as the service), while the ticket takes them, for
  // owners that have not answered marked or clear.
  let responding = null;
  function showResponseForm(tk) {
    const open = ['owners_notified', 'emergency', 'in_progress'].includes(tk.state);
    const waiting = (tk.owners ?? []).filter((o) => o.status === 'pending' || o.status === 'partially_marked');
    const form = $('response-form');
    form.hidden = !(app.can('operator') && app.has('/excavation/tickets/{id}/responses') && open && waiting.length);
    if (form.hidden) return;
    const sel = $('resp-owner');
    const keep = responding === tk.id ? sel.value : '';
    sel.replaceChildren(...waiting.map((o) => new Option(`${o.name} (${tv('val', o.status)})`, o.owner_id)));
    if (keep && waiting.some((o) => String(o.owner_id) === keep)) sel.value = keep;
    responding = tk.id;
  }
  $('response-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = $('ticket-view').dataset.ticketId;
    const ownerId = Number($('resp-owner').value);
    const status = $('resp-status').value;
    const note = $('resp-note').value.trim();
    const name = $('resp-owner').selectedOptions[0]?.textContent ?? ownerId;
    try {
      await api(`/excavation/tickets/${id}/responses`, { method: 'POST', body: { owner_id: ownerId, status, ...(note ? { note } : {}) } });
      $('resp-note').value = '';
      $('resp-msg').textContent = t('response_recorded', { owner: name, status: tv('val', status) });
      await follow(id);
    } catch (err) {
      $('resp-msg').textContent = `${t('error')}: ${err.message}`;
    }
  });
  $('ticket-open').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = Number($('ticket-open-id').value);
    if (Number.isInteger(id) && id > 0) follow(id);
  });
  if (!app.has('/excavation/tickets')) { $('ticket-form').hidden = true; $('ticket-open').hidden = true; }
  for (const b of ['dl-html', 'dl-geojson']) $(b).hidden = !app.has('/excavation/check');

  app.onViewChange.push((v) => { if (v !== 'excavation' && mode) cancel(); });
  onLang(() => { redraw(); renderResult(); });
  app.clickers.push({ views: ['excavation'], layers: ['conflict-pipes'], onClick: (f, lngLat) => app.showRecord('pipelines', f.properties.pipeline_id ?? f.id, lngLat) });
  app.dig = { start, add, finish, cancel, check, geometry, follow, fitDig: () => { const g = geometry(); const b = g && featureBounds(g); if (b) map.fitBounds(b, { padding: 40 }); } };
  redraw();
}
