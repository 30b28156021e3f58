// Network traces in the web client (issue 15). From a pipeline's popup an analyst or
// operator isolates the pipe: the map draws the isolated segment, the pockets cut off as a
// side effect, the valves to close and the other boundary valves; the panel gives the
// counts (valves, customers, pockets, length) and lists the valves to close, each with a
// "failed" action that recomputes with that valve passed through, as in the field.

import { api } from './api.js';
import { t, onLang } from './i18n.js';
import { esc } from './util.js';

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
  const ids = ['trace-outline', 'trace-pipes', 'trace-valves'];
  app.viewLayers.network = [...(app.viewLayers.network ?? []), ...ids];
  app.applyVisibility?.();

  const panel = document.getElementById('trace-panel');
  const state = { pipes: [], broken: new Set(), answer: null };

  function render() {
    const a = state.answer;
    panel.hidden = !a;
    if (!a) return;
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
      + (state.broken.size ? `<p class="muted">${esc(t('trace_broken', { ids: [...state.broken].join(', ') }))}</p>` : '')
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

  async function run() {
    panel.dataset.state = 'running';
    const body = { pipes: state.pipes, broken_valves: [...state.broken] };
    try {
      const [answer, fc] = await Promise.all([
        api('/trace/isolate', { method: 'POST', body }),
        api('/trace/isolate?f=geojson', { method: 'POST', body }),
      ]);
      state.answer = answer;
      map.getSource('trace')?.setData(fc);
      render();
      panel.dataset.state = 'ready';
    } catch (e) {
      app.toast?.(e.message, 'error');
      panel.dataset.state = 'error';
    }
  }

  /** Isolates pipeline `id` (a new trace: no failed valves yet). */
  app.traceFrom = (id) => {
    state.pipes = [Number(id)];
    state.broken = new Set();
    return run();
  };
  panel.querySelector('.trace-clear').addEventListener('click', () => {
    state.answer = null;
    map.getSource('trace')?.setData(EMPTY);
    render();
  });
  onLang(render);
  // The button in a pipeline's popup (main.js showRecord).
  document.addEventListener('click', (e) => {
    const b = e.target.closest?.('.trace-isolate');
    if (b) app.traceFrom(b.dataset.pipe);
  });
}
