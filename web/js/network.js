// The network view: pipelines coloured by kind (colours read from the service's style, so
// they follow CJJ 61 as the server defines them) with a legend whose checkboxes show or
// hide each kind (the network's sources, valves and customer connections with it),
// grid-cell outlines by level with their names, and popups of pipelines, nodes and grid
// cells with the attributes the caller's role may see.

import { t, tv, onLang } from './i18n.js';

/** `[[value, colour]…]` and the fallback of a `["match", ["get", prop], …]` expression. */
export function matchPairs(expr) {
  if (!Array.isArray(expr) || expr[0] !== 'match') return { pairs: [], fallback: null };
  const pairs = [];
  for (let i = 2; i + 1 < expr.length; i += 2) pairs.push([expr[i], expr[i + 1]]);
  return { pairs, fallback: expr[expr.length - 1] };
}

export function initNetwork(app) {
  const { map } = app;
  const net = app.styles.network;
  const pipeLayers = net.layers.filter((l) => l['source-layer'] === 'pipelines').map((l) => l.id);
  const gridLayers = net.layers.filter((l) => l['source-layer'] === 'grid_cells').map((l) => l.id);
  const nodeLayers = net.layers.filter((l) => l['source-layer'] === 'nodes').map((l) => l.id);
  const kindLayers = [...pipeLayers, ...nodeLayers];
  const baseFilter = Object.fromEntries(kindLayers.map((id) => [id, map.getFilter(id)]));
  const mainPipe = net.layers.find((l) => l.id === pipeLayers[0]);
  const { pairs: kindColours } = matchPairs(mainPipe?.paint?.['line-color']);
  const enabled = new Set(kindColours.map(([k]) => k));

  // Grid names, drawn with local fonts (MapLibre draws glyphs itself when the style has no
  // glyphs URL, so nothing is fetched); finer levels only as one zooms in, like the cells.
  const served = net.layers.find((l) => l.type === 'symbol' && l['source-layer'] === 'grid_cells');
  if (!served) map.addLayer({
    id: 'grid-cells-names',
    type: 'symbol',
    source: 'lifeline',
    'source-layer': 'grid_cells',
    filter: ['match', ['get', 'level'], ['district', 'street', 'community'], true, false],
    layout: {
      'text-field': ['get', 'name'],
      'text-font': ['Noto Sans Regular'],
      'text-size': ['match', ['get', 'level'], 'district', 16, 'street', 13, 12],
      'symbol-placement': 'point',
      'text-max-width': 8,
      'text-padding': 6,
    },
    paint: { 'text-color': '#333', 'text-halo-color': '#fff', 'text-halo-width': 1.5 },
  });

  // Grid names where they can be read: districts from z10, streets from z13, communities
  // from z14.5 (finer cells are not named), never more than one level's worth at a time.
  const namesId = served ? served.id : 'grid-cells-names';
  map.setFilter(namesId, ['step', ['zoom'],
    false,
    10, ['==', ['get', 'level'], 'district'],
    13, ['match', ['get', 'level'], ['district', 'street'], true, false],
    14.5, ['match', ['get', 'level'], ['district', 'street', 'community'], true, false]]);
  // Line width by diameter where the tiles carry it (analysts and up, from z12): DN200 and
  // under thin, DN800 and over about twice the default; without a diameter the default.
  const byDiameter = (w) => ['*', w, ['interpolate', ['linear'], ['coalesce', ['get', 'diameter_mm'], 400],
    100, 0.6, 300, 0.9, 600, 1.3, 1000, 2, 2000, 2.6]];
  for (const id of pipeLayers) {
    map.setPaintProperty(id, 'line-width', ['interpolate', ['linear'], ['zoom'], 10, byDiameter(0.6), 14, byDiameter(1.5), 18, byDiameter(4)]);
  }

  const networkLayers = [...gridLayers, ...pipeLayers, ...nodeLayers, served ? served.id : 'grid-cells-names', 'highlight-line', 'highlight-point'];
  app.viewLayers.network = networkLayers;
  app.pipeLayers = pipeLayers;

  function applyKinds() {
    const only = ['in', ['get', 'kind'], ['literal', [...enabled]]];
    for (const id of kindLayers) {
      const base = baseFilter[id];
      map.setFilter(id, base ? ['all', base, only] : only);
    }
  }

  function renderLegend() {
    const fs = document.getElementById('kind-legend');
    const legend = fs.querySelector('legend');
    fs.replaceChildren(legend);
    legend.textContent = t('kind_toggles');
    for (const [kind, colour] of kindColours) {
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = enabled.has(kind);
      box.dataset.kind = kind;
      box.addEventListener('change', () => {
        if (box.checked) enabled.add(kind); else enabled.delete(kind);
        applyKinds();
      });
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = colour;
      sw.setAttribute('aria-hidden', 'true');
      // The standard's name of the colour, so the legend reads without the swatch.
      const cname = document.createElement('span');
      cname.className = 'cname';
      const key = `colour_${String(colour).replace('#', '').toLowerCase()}`;
      const named = t(key);
      cname.textContent = named === key ? String(colour) : named;
      label.append(box, sw, document.createTextNode(tv('kind', kind)), cname);
      fs.append(label);
    }
    // Line width by diameter, dashes by status.
    const row = (cls, text) => {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = `swatch ${cls}`;
      sw.style.background = '#5b6673';
      sw.setAttribute('aria-hidden', 'true');
      li.append(sw, document.createTextNode(text));
      return li;
    };
    const note = document.createElement('li');
    note.className = 'muted';
    note.textContent = t('legend_width');
    document.getElementById('line-legend').replaceChildren(
      note, row('w1', t('width_small')), row('w2', t('width_medium')), row('w3', t('width_large')),
      row('dashed', t('legend_dashed')),
    );
    const outline = net.layers.find((l) => l.id === gridLayers[0]);
    const { pairs } = matchPairs(outline?.paint?.['line-color']);
    const ul = document.getElementById('grid-legend');
    ul.replaceChildren(...pairs.map(([level, colour]) => {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'swatch box';
      sw.style.borderColor = colour;
      sw.setAttribute('aria-hidden', 'true');
      li.append(sw, document.createTextNode(tv('level', level)));
      return li;
    }));
  }
  renderLegend();
  onLang(renderLegend);

  app.clickers.push(
    {
      views: ['network', 'excavation'],
      layers: pipeLayers,
      onClick: (f, lngLat) => app.showRecord('pipelines', f.id, lngLat),
    },
    {
      views: ['network'],
      layers: nodeLayers,
      onClick: (f, lngLat) => app.showRecord('nodes', f.id, lngLat),
    },
    {
      views: ['network'],
      layers: gridLayers,
      onClick: (f, lngLat) => app.showRecord('grid_cells', f.id, lngLat),
    },
  );
}
