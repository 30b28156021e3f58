// Network traces in the web client (issue 15). From a pipeline's popup an analyst or
// operator isolates the pipe (from an open leak alarm in the risk view, its pipe): the map
// draws the isolated segment, the pockets cut off as a side effect, the valves to close
// and the other boundary valves; the panel gives the counts (valves, customers, pockets,
// length) and lists the valves to close, each with a "failed" action that recomputes with
// that valve passed through, as in the field. The same pipes traced upstream (to the
// sources) or downstream (what they feed) are drawn in blue and green. An operator
// publishes the isolation to everyone following the event stream; a published trace
// arrives as a notice that opens it here.

import { api } from './api.js';
import { t, onLang } from './i18n.js';
import { esc, featureBounds } from './util.js';
import { geoToDisplay } from './datum.js';

const EMPTY = { type: 'FeatureCollection', features: [] };

export function initTrace(app) {
  const { map } = app;
  map.addSource('trace', { type: 'geojson', data: EMPTY });
  const role = (...r) => ['in', ['get', 'role'], ['literal', r]];
  map.addLayer({
    id: 'trace-outline', type: 'fill', source: 'trace', filter: role('outline'),
    paint: { 'fill-color': '#d7191c', 'fill-opacity': 0.08 },
  });
  map.addLayer({
    id: 'trace-pipes', type: 'line', source: 'trace', filter: role('segment', 'pocket'),
    layout: { 'line-cap': 'round' },
    paint: {
      'line-color': ['match', ['get', 'role'], 'segment', '#d7191c', '#ff8c00'],
      'line-width': 6, 'line-opacity': 0.85,
    },
  });
  map.addLayer({
    id: 'trace-valves', type: 'circle', source: 'trace', filter: role('valve_to_close', 'boundary_valve'),
    paint: {
      'circle-radius': ['match', ['get', 'role'], 'valve_to_close', 8, 5],
      'circle-color': ['match', ['get', 'role'], 'valve_to_close', '#000000', '#9e9e9e'],
      'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2,
    },
  });
  map.addSource('trace-flow', { type: 'geojson', data: EMPTY });
  map.addLayer({
    id: 'trace-flow-pipes', type: 'line', source: 'trace-flow', filter: ['==', ['geometry-type'], 'LineString'],
    layout: { 'line-cap': 'round' },
    paint: {
      'line-color': ['match', ['get', 'role'], 'upstream', '#2166ac', 'downstream', '#1a9850', '#d7191c'],
      'line-width': 5, 'line-opacity': 0.8,
    },
  });
  map.addLayer({
    id: 'trace-flow-points', type: 'circle', source: 'trace-flow', filter: ['==', ['geometry-type'], 'Point'],
    paint: {
      'circle-radius': ['match', ['get', 'role'], 'source', 8, 4],
      'circle-color': ['match', ['get', 'role'], 'source', '#2166ac', '#1a9850'],
      'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1.5,
    },
  });
  const ids = ['trace-outline', 'trace-pipes', 'trace-valves', 'trace-flow-pipes', 'trace-flow-points'];
  app.viewLayers.network = [...(app.viewLayers.network ?? []), ...ids];
  app.applyVisibility?.();

  const panel = document.getElementById('trace-panel');
  const state = { pipes: [], broken: new Set(), answer: null, alarm: null, flow: null };

  function render() {
    const a = state.answer;
    panel.hidden = !a;
    if (!a) return;
    panel.querySelector('.trace-publish-row').hidden = !app.can('operator');
    const nets = a.networks ?? [];
    const pockets = nets.reduce((n, x) => n + x.pockets.length, 0);
    const length = Object.values(a.totals.length_m_by_kind ?? {}).reduce((s, v) => s + v, 0);
    const notes = nets.flatMap((x) => x.notes);
    const valves = nets.flatMap((x) => x.boundary_valves
      .filter((b) => x.valves_to_close.includes(b.id)));
    panel.querySelector('.trace-summary').innerHTML =
      `<p>${esc(t('trace_summary', {
        v: a.totals.valves_to_close, c: a.totals.customers, p: pockets, m: Math.round(length),
      }))}</p>`
      + (state.alarm ? `<p class="muted">${esc(t('trace_from_alarm', { id: state.alarm }))}</p>` : '')
      + (state.broken.size ? `<p class="muted">${esc(t('trace_broken', { ids: [...state.broken].join(', ') }))}</p>` : '')
      + (state.flow ? `<p class="flow">${esc(flowText(state.flow))}</p>` : '')
      + notes.map((n) => `<p class="note">${esc(n)}</p>`).join('');
    const ul = panel.querySelector('.trace-valves');
    ul.replaceChildren(...valves.map((b) => {
      const li = document.createElement('li');
      li.dataset.valve = b.id;
      li.append(document.createTextNode(`${t('valve')} ${b.id} · ${t('on_pipe_id')} ${b.pipe} `));
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'valve-failed';
      btn.textContent = t('valve_failed');
      btn.addEventListener('click', () => { state.broken.add(b.id); run(); });
      li.append(btn);
      return li;
    }));
  }

  function flowText({ direction, answers }) {
    const pipes = new Set(answers.flatMap((a) => a.pipes)).size;
    const m = Math.round(answers.reduce((s, a) => s + a.length_m, 0));
    if (direction === 'upstream') {
      const sources = [...new Set(answers.flatMap((a) => a.sources))];
      return t('trace_upstream_summary', { n: pipes, m, s: sources.join(', ') || '—' });
    }
    const c = answers.reduce((s, a) => s + a.customers.count, 0);
    return t('trace_downstream_summary', { n: pipes, m, c });
  }

  async function run() {
    panel.dataset.state = 'running';
    const body = { pipes: state.pipes, broken_valves: [...state.broken] };
    // An alarm's isolation comes from its own link; once a valve fails it is the pipes'.
    const from = state.alarm && !state.broken.size
      ? (f) => api(`/alarms/${state.alarm}/isolation${f ? '?f=geojson' : ''}`)
      : (f) => api(`/trace/isolate${f ? '?f=geojson' : ''}`, { method: 'POST', body });
    try {
      const [answer, fc] = await Promise.all([from(false), from(true)]);
      state.pipes = answer.networks.flatMap((n) => n.start_pipes);
      state.answer = answer;
      map.getSource('trace')?.setData(fc);
      state.fc = fc;
      render();
      panel.dataset.state = 'ready';
    } catch (e) {
      app.toast?.(e.message, 'error');
      panel.dataset.state = 'error';
    }
  }

  /** Isolates pipelines `ids` (a new trace), with valves already known to have failed. */
  app.traceFrom = (ids, broken = []) => {
    state.pipes = [ids].flat().map(Number);
    state.broken = new Set(broken.map(Number));
    state.alarm = null;
    state.flow = null;
    map.getSource('trace-flow')?.setData(EMPTY);
    return run();
  };
  /** Isolates the pipe of open leak alarm `id`. */
  app.traceAlarm = (id) => {
    app.setView?.('network');
    state.alarm = Number(id);
    state.broken = new Set();
    state.flow = null;
    map.getSource('trace-flow')?.setData(EMPTY);
    return run();
  };

  async function follow(direction) {
    panel.dataset.state = 'running';
    const body = { pipes: state.pipes, broken_valves: [...state.broken] };
    try {
      const [answers, fc] = await Promise.all([
        api(`/trace/${direction}`, { method: 'POST', body }),
        api(`/trace/${direction}?f=geojson`, { method: 'POST', body }),
      ]);
      state.flow = { direction, answers };
      map.getSource('trace-flow')?.setData(fc);
      render();
      panel.dataset.state = 'ready';
    } catch (e) {
      app.toast?.(e.message, 'error');
      panel.dataset.state = 'error';
    }
  }
  panel.querySelector('.trace-upstream').addEventListener('click', () => follow('upstream'));
  panel.querySelector('.trace-downstream').addEventListener('click', () => follow('downstream'));

  panel.querySelector('.trace-publish').addEventListener('click', async () => {
    const input = panel.querySelector('.trace-message');
    const message = input.value.trim() || undefined;
    try {
      const a = await api('/trace/isolate?publish=true', {
        method: 'POST', body: { pipes: state.pipes, broken_valves: [...state.broken], message },
      });
      input.value = '';
      app.toast?.(t('trace_published', { id: a.published }));
    } catch (e) {
      app.toast?.(e.message, 'error');
    }
  });

  /** A trace an operator published (`event: trace`): a notice that opens it. */
  app.onTracePublished = (p) => {
    const nets = p.networks ?? [];
    const v = nets.reduce((n, x) => n + x.valves_to_close.length, 0);
    const c = nets.reduce((n, x) => n + x.customers, 0);
    const text = t('trace_arrived', { v, c, msg: p.message ?? '' });
    app.toast?.(text, '', {
      label: t('trace_show'),
      run: () => { app.setView?.('network'); app.traceFrom(nets.flatMap((x) => x.start_pipes), p.broken_valves ?? []); },
    });
  };

  // The isolated segment and its surroundings in 3D (the trace stays drawn on the ground).
  panel.querySelector('.trace-3d').addEventListener('click', () => {
    const within = (fs) => featureBounds({ type: 'GeometryCollection', geometries: fs.map((f) => geoToDisplay(f.geometry)) });
    const b = state.fc && within(state.fc.features);
    // Centred on the isolated pipes when the segment is wider than the 3D window.
    const s = state.fc && within(state.fc.features.filter((f) => f.properties?.layer === 'pipelines' && state.pipes.includes(Number(f.properties.id))));
    const centre = s ? [(s[0][0] + s[1][0]) / 2, (s[0][1] + s[1][1]) / 2] : undefined;
    if (b) app.view3d.open({ bounds: b, centre, what: t('trace_title'), trace: state.fc }).catch((e) => app.toast?.(e.message, 'error'));
  });
  panel.querySelector('.trace-clear').addEventListener('click', () => {
    state.answer = null;
    state.flow = null;
    state.alarm = null;
    map.getSource('trace')?.setData(EMPTY);
    map.getSource('trace-flow')?.setData(EMPTY);
    render();
  });
  onLang(render);
  // The button in a pipeline's popup (main.js showRecord).
  document.addEventListener('click', (e) => {
    const b = e.target.closest?.('.trace-isolate');
    if (b) app.traceFrom(b.dataset.pipe);
  });
}
