// End-to-end test of the web client in Debian's headless chromium (playwright-core, no
// browser download): `node tests/web/e2e.mjs <base-url>`. tests/web_e2e.rs starts the real
// server and runs this; it can also be pointed at any running service.
//
// Environment: LIFELINE_E2E_KEYS — JSON {role: key} (an operator key is needed for the
// alarm and excavation steps); LIFELINE_E2E_ARTIFACTS — where screenshots and the report go
// (default target/web-artifacts); LIFELINE_E2E_FRAMES=1 — also measure frame times while
// panning (meant for the jiulongpo preset); CHROMIUM — the browser (default
// /usr/bin/chromium). Optional: LIFELINE_BIN (the `lifeline` binary) with
// LIFELINE_E2E_LEAK ({sensor_id, at}: a gas detector) — run `lifeline simulate --leak-now`
// and time its alarm; LIFELINE_E2E_GCJ_URL (the same data served with a GCJ-02 raster
// basemap), LIFELINE_E2E_BASEMAP (the basemap's origin), LIFELINE_E2E_BASEMAP_RGB (its
// tiles' colour) and LIFELINE_E2E_GCJ ({id, cgcs, gcj}: a risk point and its GCJ-02
// position by the service's function) — the basemap and GCJ-02 checks.
//
// Checks: the page loads with no console error; login by key shows the role; features
// render (queryRenderedFeatures finds pipelines and risk points); the per-kind toggles
// filter what is drawn; search by id opens the record; language toggle; the tablet
// layout; a drawn dig polygon shows its conflicts; an operator records owner responses;
// an alarm pushed through the ingest API, and one raised by `lifeline simulate`, appear
// on the map within 2 s; frame times while panning (CPU time per frame from chromium's
// trace); over a GCJ-02 raster basemap: the basemap under our layers, features at their
// GCJ-02 position, a dig checked where it is. Exit code 0 only when every check passed; a
// JSON report (report.json) lists each check.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { vertexFractions } from '../../web/js/metric.js';

const base = (process.argv[2] || process.env.LIFELINE_URL || '').replace(/\/$/, '');
if (!base) {
  console.error('usage: node tests/web/e2e.mjs <base-url>');
  process.exit(2);
}
const keys = JSON.parse(process.env.LIFELINE_E2E_KEYS || '{}');
const out = resolve(process.env.LIFELINE_E2E_ARTIFACTS || 'target/web-artifacts');
const measureFrames = process.env.LIFELINE_E2E_FRAMES === '1';
mkdirSync(out, { recursive: true });

const results = [];
let failed = 0;
function record(name, ok, detail = '') {
  results.push({ name, ok, detail });
  if (ok === false) failed += 1;
  const mark = ok === true ? 'ok  ' : ok === false ? 'FAIL' : 'skip';
  console.log(`${mark} ${name}${detail ? ` — ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` : ''}`);
}
// LIFELINE_E2E_ONLY: a regular expression; steps whose name does not match are skipped
// (e.g. 'page loads|frame times' for a frame measurement against a release server).
const only = process.env.LIFELINE_E2E_ONLY ? new RegExp(process.env.LIFELINE_E2E_ONLY) : null;
async function step(name, f) {
  if (only && !only.test(name)) { record(name, null, 'not selected by LIFELINE_E2E_ONLY'); return; }
  try {
    const r = await f();
    if (r && r.skip) record(name, null, r.skip);
    else record(name, true, r ?? '');
  } catch (e) {
    record(name, false, e.message.split('\n')[0]);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function http(path, { method = 'GET', body, role } = {}) {
  const headers = {};
  if (role) headers.Authorization = `Bearer ${keys[role]}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

// The service's clock (`GET /health`): readings are stamped, and latencies measured, by
// the service's time, which tests may set apart from this machine's (LIFELINE_TEST_CLOCK).
const serverOffsetMs = await (async () => {
  const sent = Date.now();
  const h = await http('/health');
  const t = Date.parse(h.json?.time);
  return Number.isFinite(t) ? t - (sent + Date.now()) / 2 : 0;
})();
const serverNow = () => Date.now() + serverOffsetMs;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Software GL (no GPU here), and none of chromium's own calls home (the network is closed).
  args: ['--no-sandbox', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
    '--disable-quic', '--disable-default-apps'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN' });
const page = await context.newPage();
const consoleErrors = [];
const outside = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) outside.push(r.url()); });

const idle = () => page.evaluate(() => new Promise((r) => {
  const m = window.lifeline.map;
  if (m.loaded() && !m.isMoving() && m.areTilesLoaded()) r(); else m.once('idle', () => r());
}));
const jump = async (center, zoom) => {
  await page.evaluate(([c, z]) => window.lifeline.map.jumpTo({ center: c, zoom: z }), [center, zoom]);
  await idle();
};
const rendered = (layers) => page.evaluate((ls) => {
  const m = window.lifeline.map;
  const ids = ls.filter((l) => m.getLayer(l));
  return m.queryRenderedFeatures({ layers: ids }).map((f) => ({ id: f.id, layer: f.layer.id, props: f.properties }));
}, layers);
const shot = (name) => page.screenshot({ path: join(out, `${name}.png`) });

/** A PNG (8-bit RGB or RGBA, as chromium's screenshots are) as {width, height, at(x, y)
 * → [r, g, b]}: zlib by node, the five row filters here. */
function decodePng(png) {
  let at = 8; const idat = []; let width = 0; let height = 0; let channels = 3;
  while (at < png.length) {
    const len = png.readUInt32BE(at); const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      if (data[8] !== 8 || (data[9] !== 2 && data[9] !== 6)) throw new Error(`unexpected PNG depth ${data[8]} / colour type ${data[9]}`);
      channels = data[9] === 6 ? 4 : 3;
    }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y += 1) {
    const f = raw[y * (stride + 1)];
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i += 1) {
      const a = i >= channels ? px[y * stride + i - channels] : 0;
      const b = y > 0 ? px[(y - 1) * stride + i] : 0;
      const c = i >= channels && y > 0 ? px[(y - 1) * stride + i - channels] : 0;
      let v = row[i];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const p = a + b - c; const pa = Math.abs(p - a); const pb = Math.abs(p - b); const pc = Math.abs(p - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      px[y * stride + i] = v & 255;
    }
  }
  return { width, height, at: (x, y) => { const o = y * stride + x * channels; return [px[o], px[o + 1], px[o + 2]]; } };
}
/** A strongly coloured pixel: the pipe colours of CJJ 61 (cyan, magenta, red, green,
 * orange) are; the background, grid outlines and labels are not. */
const saturated = ([r, g, b]) => Math.max(r, g, b) - Math.min(r, g, b) > 90;

const paths = new Set(Object.keys((await http('/openapi.json')).json?.paths ?? {}));
const operator = keys.operator ? 'operator' : keys.admin ? 'admin' : null;

// ---- load and login --------------------------------------------------------------------
await step('page loads anonymously and becomes ready', async () => {
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready=true]', { timeout: 30000 });
  await idle();
  const who = await page.textContent('#whoami');
  // A viewer gets no excavation view (contractor and up) and no login-only controls.
  assert(await page.isHidden('#tab-excavation'), 'excavation tab shown to an anonymous viewer');
  assert(await page.isHidden('#logout'), 'logout shown without a key');
  return `whoami: ${who}`;
});

await step('first view: the whole network is on screen (map bounds and pixels)', async () => {
  const b = (await http('/layers')).json.layers.find((l) => l.id === 'pipelines').bbox;
  const v = await page.evaluate((bb) => {
    const m = window.lifeline.map;
    const mb = m.getBounds();
    const p0 = m.project([bb[0], bb[1]]); const p1 = m.project([bb[2], bb[3]]);
    const r = m.getCanvas().getBoundingClientRect();
    return { w: mb.getWest(), s: mb.getSouth(), e: mb.getEast(), n: mb.getNorth(), zoom: m.getZoom(), saved: localStorage.length,
      box: [Math.min(p0.x, p1.x), Math.min(p0.y, p1.y), Math.max(p0.x, p1.x), Math.max(p0.y, p1.y)], canvas: [r.x, r.y, r.width, r.height] };
  }, b);
  assert(v.w <= b[0] && v.s <= b[1] && v.e >= b[2] && v.n >= b[3], `map bounds ${[v.w, v.s, v.e, v.n].map((x) => x.toFixed(4))} do not hold the network ${b.map((x) => x.toFixed(4))}`);
  const [cx, cy, cw, ch] = v.canvas;
  const bw = v.box[2] - v.box[0]; const bh = v.box[3] - v.box[1];
  assert(bw >= 0.6 * cw || bh >= 0.6 * ch, `the network fills only ${bw.toFixed(0)}×${bh.toFixed(0)} px of ${cw}×${ch}`);
  // Pixels: the pipes drawn (strong colours) spread over the network's box and stay on screen.
  const png = decodePng(await page.screenshot({ clip: { x: cx, y: cy, width: cw, height: ch } }));
  let n = 0; let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity; let edge = 0;
  for (let y = 0; y < png.height; y += 2) {
    for (let x = 0; x < png.width; x += 2) {
      if (!saturated(png.at(x, y))) continue;
      n += 1; x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
      if (x < 3 || y < 3 || x >= png.width - 3 || y >= png.height - 3) edge += 1;
    }
  }
  assert(n > 200, `only ${n} pipe pixels in the first view`);
  assert(x1 - x0 >= 0.5 * bw && y1 - y0 >= 0.5 * bh, `pipe pixels span ${x1 - x0}×${y1 - y0} px of the network's ${bw.toFixed(0)}×${bh.toFixed(0)}`);
  assert(x0 >= v.box[0] - 12 && x1 <= v.box[2] + 12 && y0 >= v.box[1] - 12 && y1 <= v.box[3] + 12, 'pipe pixels outside the network box');
  assert(edge < 20, `${edge} pipe pixels at the screen's edge: the network is cut`);
  await shot('first-view');
  return `zoom ${v.zoom.toFixed(2)}; network box ${bw.toFixed(0)}×${bh.toFixed(0)} px of ${cw}×${ch}; ${n} pipe pixels (every 2nd) over ${x1 - x0}×${y1 - y0} px`;
});

await step('the last view is kept per browser', async () => {
  await jump([106.5, 29.5], 13.25);
  await page.waitForFunction(() => JSON.parse(localStorage.getItem('lifeline.view.cgcs2000') ?? 'null')?.zoom === 13.25, null, { timeout: 5000 });
  await page.reload();
  await page.waitForSelector('body[data-ready=true]', { timeout: 30000 });
  const z = await page.evaluate(() => { const m = window.lifeline.map; return [m.getZoom(), m.getCenter().lng, m.getCenter().lat]; });
  assert(Math.abs(z[0] - 13.25) < 1e-6 && Math.abs(z[1] - 106.5) < 1e-6 && Math.abs(z[2] - 29.5) < 1e-6, `reopened at ${z}`);
  return `reopened at zoom ${z[0]}`;
});

await step('legend: colour names of the standard, width by diameter, dashes by status', async () => {
  const text = await page.textContent('#panel-network');
  for (const w of ['天蓝', '褐', '粉红', '≤ DN200', '≥ DN800', '虚线']) assert(text.includes(w), `legend lacks ${w}`);
  assert(await page.$('#line-legend .swatch.dashed'), 'no dashed swatch');
});

await step('login by API key shows the role and is kept in the session', async () => {
  if (!operator) return { skip: 'no operator key given' };
  await page.click('#login-open');
  await page.fill('#login-key', 'll_not_a_key');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  consoleErrors.length = 0; // the refused key's 401 is the expected answer
  await page.fill('#login-key', keys[operator]);
  await Promise.all([page.waitForNavigation(), page.click('#login-form button[type=submit]')]);
  await page.waitForSelector('body[data-ready=true]', { timeout: 30000 });
  const who = await page.textContent('#whoami');
  assert(who.includes('运维') || who.includes('管理'), `whoami after login: ${who}`);
  const stored = await page.evaluate(() => sessionStorage.getItem('lifeline.key'));
  assert(stored === keys[operator], 'key not in sessionStorage');
  assert(!(await page.isHidden('#tab-excavation')), 'excavation tab hidden for an operator');
  return who;
});

// ---- network view ----------------------------------------------------------------------
const pipes = (await http('/features/pipelines?limit=200', { role: operator })).json?.features ?? [];
const pipeLayers = await page.evaluate(() => window.lifeline.pipeLayers);
const pipe = pipes.find((f) => f.geometry.coordinates.length >= 2) ?? pipes[0];
const mid = (c) => [(c[0][0] + c[c.length - 1][0]) / 2, (c[0][1] + c[c.length - 1][1]) / 2];

await step('network view: queryRenderedFeatures finds pipelines', async () => {
  assert(pipe, 'the service has no pipeline');
  await page.click('#tab-network');
  await jump(mid(pipe.geometry.coordinates), 16);
  const f = await rendered(pipeLayers);
  assert(f.length > 0, 'no pipeline rendered');
  await shot('network');
  return `${f.length} pipeline features rendered, kinds ${[...new Set(f.map((x) => x.props.kind))].join(',')}`;
});

await step('network view: per-kind toggle hides a kind', async () => {
  const before = await rendered(pipeLayers);
  const kind = before[0].props.kind;
  await page.uncheck(`#kind-legend input[data-kind="${kind}"]`);
  await idle();
  const after = await rendered(pipeLayers);
  assert(!after.some((x) => x.props.kind === kind), `${kind} still drawn`);
  await page.check(`#kind-legend input[data-kind="${kind}"]`);
  await idle();
  const again = await rendered(pipeLayers);
  assert(again.some((x) => x.props.kind === kind), `${kind} not drawn again`);
  return `${kind}: ${before.length} → ${after.length} → ${again.length}`;
});

await step('network view: grid cell outlines and names render', async () => {
  const b = (await http('/layers')).json.layers.find((l) => l.id === 'grid_cells').bbox;
  await jump([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], 11);
  const f = await rendered(['grid-cells-outline', 'grid-cells-names']);
  assert(f.some((x) => x.layer === 'grid-cells-outline'), 'no grid outline');
  assert(f.some((x) => x.layer === 'grid-cells-names' && x.props.name), 'no grid name label');
  return `${f.length} grid features, e.g. ${f.find((x) => x.props.name)?.props.name}`;
});

await step('search by id opens the record', async () => {
  await page.selectOption('#search-layer', 'pipelines');
  await page.fill('#search-id', String(pipe.id));
  await page.click('#search button[type=submit]');
  await page.waitForSelector(`.maplibregl-popup dl[data-layer=pipelines][data-id="${pipe.id}"]`, { timeout: 10000 });
  const text = await page.textContent('.maplibregl-popup');
  if (operator) assert(text.includes('权属单位'), 'an operator sees the owner in the popup');
  else assert(!text.includes('权属单位'), 'an anonymous viewer sees no owner');
  await shot('search-popup');
  return `pipeline ${pipe.id}`;
});

await step('an operator isolates a pipe, sees the valves to close, and recomputes after a valve fails', async () => {
  if (!paths.has('/trace/isolate')) return { skip: 'POST /trace/isolate is not in the service yet' };
  if (!operator) return { skip: 'no operator key' };
  const traceable = pipes.find((f) => f.properties?.from_node && f.properties?.to_node);
  if (!traceable) return { skip: 'the data set has no pipe with topology' };
  const at = mid(traceable.geometry.coordinates);
  await page.click('#tab-network');
  await jump(at, 17);
  await page.evaluate(([id, ll]) => window.lifeline.showRecord('pipelines', id, ll), [traceable.id, at]);
  await page.click(`.trace-isolate[data-pipe="${traceable.id}"]`);
  await page.waitForFunction(() => document.getElementById('trace-panel').dataset.state === 'ready', null, { timeout: 10000 });
  await idle();
  const want = (await http('/trace/isolate', { method: 'POST', body: { pipes: [traceable.id] }, role: operator })).json;
  const toClose = want.networks.flatMap((n) => n.valves_to_close);
  const listed = await page.$$eval('#trace-panel .trace-valves li', (ls) => ls.map((l) => Number(l.dataset.valve)));
  assert(JSON.stringify(listed.sort()) === JSON.stringify([...toClose].sort()), `panel lists ${listed}, the service ${toClose}`);
  const drawn = await rendered(['trace-pipes', 'trace-valves']);
  assert(drawn.some((f) => f.layer === 'trace-pipes'), 'the isolated segment is not drawn');
  if (toClose.length) assert(drawn.some((f) => f.layer === 'trace-valves'), 'no valve drawn');
  await shot('trace');
  if (!toClose.length) return `pipe ${traceable.id}: no valve to close (${want.totals.customers} customers)`;
  // The first valve fails in the field: recompute with it passed through.
  const failed = listed[0];
  await page.click(`#trace-panel .trace-valves li[data-valve="${failed}"] button.valve-failed`);
  await page.waitForFunction((v) => document.querySelector('#trace-panel .trace-summary')?.textContent.includes(String(v))
    && document.getElementById('trace-panel').dataset.state === 'ready', failed, { timeout: 10000 });
  const again = (await http('/trace/isolate', { method: 'POST', body: { pipes: [traceable.id], broken_valves: [failed] }, role: operator })).json;
  const relisted = await page.$$eval('#trace-panel .trace-valves li', (ls) => ls.map((l) => Number(l.dataset.valve)));
  const wantAgain = again.networks.flatMap((n) => n.valves_to_close);
  assert(JSON.stringify(relisted.sort()) === JSON.stringify([...wantAgain].sort()), `after the failure the panel lists ${relisted}, the service ${wantAgain}`);
  assert(!relisted.includes(failed), 'the failed valve is still listed');
  // Downstream of the same pipe, with the valve still failed: drawn, and counted as the
  // service counts it.
  await page.click('#trace-panel .trace-downstream');
  await page.waitForFunction(() => document.querySelector('#trace-panel .trace-summary .flow')
    && document.getElementById('trace-panel').dataset.state === 'ready', null, { timeout: 10000 });
  await idle();
  const down = (await http('/trace/downstream', { method: 'POST', body: { pipes: [traceable.id], broken_valves: [failed] }, role: operator })).json;
  const fed = down.reduce((s, a) => s + a.customers.count, 0);
  const flowText = await page.$eval('#trace-panel .trace-summary .flow', (e) => e.textContent);
  assert(flowText.includes(String(fed)), `the panel says "${flowText}", the service ${fed} customers downstream`);
  const flowDrawn = await rendered(['trace-flow-pipes']);
  assert(flowDrawn.length > 0, 'the downstream trace is not drawn');
  await shot('trace-downstream');
  // The same trace in 3D: the isolated pipe's tube is drawn, with the segment's halo.
  await page.click('#trace-panel .trace-3d');
  await page.waitForFunction(() => document.body.dataset.view3d === 'ready', null, { timeout: 30000 });
  await idle();
  const t3 = await page.evaluate((id) => { const s = window.lifeline.view3d.state; return { role: s.trace.get(id), drawn: s.pipes.some((p) => p.id === id), halos: s.trace.size }; }, traceable.id);
  assert(t3.role === 'segment' && t3.drawn, `3D trace: pipe ${traceable.id} is ${t3.role ?? 'not in the trace'}, drawn ${t3.drawn}`);
  await shot('view3d-trace');
  await page.click('#view3d-close');
  await page.click('#trace-panel .trace-clear');
  return `pipe ${traceable.id}: ${toClose.length} valve(s), then ${wantAgain.length} with valve ${failed} failed; ${fed} customers downstream`;
});

await step('navigation lists real district/street/community names', async () => {
  await page.waitForFunction(() => document.querySelectorAll('#nav-district option').length > 1, null, { timeout: 30000 });
  const districts = await page.$$eval('#nav-district option', (o) => o.map((x) => x.textContent).slice(1));
  await page.selectOption('#nav-district', { index: 1 });
  const streets = await page.$$eval('#nav-street option', (o) => o.map((x) => x.textContent).slice(1));
  assert(districts.length > 0 && streets.length > 0, 'no district or street');
  // The first street that has communities; choosing one moves the map onto it.
  let communities = [];
  for (let i = 1; i <= streets.length && !communities.length; i += 1) {
    await page.selectOption('#nav-street', { index: i });
    communities = await page.$$eval('#nav-community option', (o) => o.map((x) => x.value).slice(1));
  }
  assert(communities.length > 0, 'no street has communities');
  await page.selectOption('#nav-community', communities[0]);
  await page.evaluate(() => new Promise((r) => window.lifeline.map.once('moveend', r)));
  const inside = await page.evaluate((id) => {
    const c = window.lifeline.nav.find((x) => String(x.id) === id);
    const m = window.lifeline.map.getCenter();
    return m.lng >= c.bounds[0][0] && m.lng <= c.bounds[1][0] && m.lat >= c.bounds[0][1] && m.lat <= c.bounds[1][1];
  }, communities[0]);
  assert(inside, 'the map did not move onto the community');
  const name = await page.$eval('#nav-community', (s) => s.selectedOptions[0].textContent);
  return `districts ${districts.slice(0, 3).join('、')}; streets ${streets.slice(0, 3).join('、')}; went to ${name}`;
});

await step('language toggle switches to English and back', async () => {
  await page.click('#lang');
  assert((await page.textContent('#tab-network')).trim() === 'Network', 'tab not in English');
  await shot('network-en');
  await page.click('#lang');
  assert((await page.textContent('#tab-network')).trim() === '管网', 'tab not back in Chinese');
});

// ---- risk view -------------------------------------------------------------------------
const riskPoints = (await http('/features/risk_points?limit=100', { role: operator })).json?.features ?? [];
await step('risk view: queryRenderedFeatures finds risk points', async () => {
  const rp = riskPoints.find((f) => f.geometry.type === 'Point');
  assert(rp, 'the service has no point risk point');
  await page.click('#tab-risk');
  await jump(rp.geometry.coordinates, 15);
  const f = await rendered(['risk-points']);
  assert(f.length > 0, 'no risk point rendered');
  const levels = [...new Set(f.map((x) => x.props.level))];
  await shot('risk');
  return `${f.length} risk points, levels ${levels.join(',')}`;
});

await step('risk view: alarm list and grid statistics', async () => {
  if (!paths.has('/alarms')) return { skip: 'GET /alarms is not in the service yet' };
  await page.waitForFunction(() => document.querySelectorAll('#alarm-list li').length > 0, null, { timeout: 10000 });
  if (!paths.has('/risk/grid-stats')) return { skip: 'GET /risk/grid-stats is not in the service yet' };
  await page.selectOption('#choro-level', 'community');
  await page.waitForFunction(() => (window.lifeline.choropleth ?? []).length > 0, null, { timeout: 10000 });
  await idle();
  // Cells drawn with a value from the statistics (feature state on the grid tiles).
  const coloured = await page.evaluate(() => window.lifeline.map.queryRenderedFeatures({ layers: ['grid-choropleth'] })
    .filter((f) => (f.state?.value ?? 0) > 0).length);
  assert(coloured > 0, 'no community coloured by the grid statistics');
  await page.evaluate(() => { window.previousChoropleth = window.lifeline.choropleth; });
  await page.selectOption('#choro-metric', 'coverage');
  await page.waitForFunction(() => window.lifeline.choropleth !== window.previousChoropleth
    && window.lifeline.choropleth.length > 0 && !document.getElementById('choro-legend').hidden, null, { timeout: 10000 });
  await idle();
  await shot('risk-choropleth');
  return `${await page.textContent('#choro-status')}; ${coloured} communities drawn with a risk value`;
});

await step('an alarm pushed through the ingest API appears on the map within 2 s', async () => {
  if (!paths.has('/events') || !paths.has('/sensors/readings')) return { skip: 'GET /events or POST /sensors/readings is not in the service yet' };
  if (!operator) return { skip: 'no operator key' };
  await page.waitForFunction(() => window.lifeline.eventsState === 'open', null, { timeout: 10000 });
  const push = JSON.parse(process.env.LIFELINE_E2E_ALARM || 'null');
  if (!push) return { skip: 'no LIFELINE_E2E_ALARM readings given' };
  await page.click('#tab-risk');
  await jump(push.at, 16);
  const before = await page.evaluate(() => [...window.lifeline.alarms.keys()]);
  const t0 = Date.now();
  const now = serverNow();
  const body = push.readings.map((r) => ({ sensor_id: push.sensor_id, time: new Date(now + r.dt_s * 1000).toISOString(), value: r.value }));
  const res = await http('/sensors/readings', { method: 'POST', body, role: operator });
  assert(res.status < 300, `ingest answered ${res.status}: ${res.text.slice(0, 200)}`);
  // On the map = drawn in the alarms layer (queryRenderedFeatures) and pulsing.
  const id = await page.waitForFunction((known) => {
    const el = [...document.querySelectorAll('.pulse[data-alarm-id]')].find((e) => !known.includes(Number(e.dataset.alarmId)));
    if (!el) return null;
    const id = Number(el.dataset.alarmId);
    const drawn = window.lifeline.map.queryRenderedFeatures({ layers: ['alarms'] }).some((f) => f.properties.id === id);
    return drawn ? id : null;
  }, before, { timeout: 5000, polling: 20 }).then((h) => h.jsonValue());
  const ms = Date.now() - t0;
  assert(await page.isVisible(`#alarm-list li[data-alarm-id="${id}"]`), 'alarm not in the list');
  await shot('risk-alarm');
  assert(ms <= 2000, `alarm took ${ms} ms`);
  return `alarm ${id} on the map ${ms} ms after the POST`;
});

await step('an alarm raised by `lifeline simulate` appears on the map within 2 s', async () => {
  if (!paths.has('/events') || !paths.has('/sensors/readings')) return { skip: 'GET /events or POST /sensors/readings is not in the service yet' };
  const leak = JSON.parse(process.env.LIFELINE_E2E_LEAK || 'null');
  if (!operator || !leak || !process.env.LIFELINE_BIN) return { skip: 'no operator key, LIFELINE_E2E_LEAK or LIFELINE_BIN' };
  await page.click('#tab-risk');
  await jump(leak.at, 16);
  const before = await page.evaluate(() => [...window.lifeline.alarms.keys()]);
  // The real CLI: every other sensor at its normal values, this one leaking from the start
  // (over the emergency threshold), so the rule's min_duration_s decides when it alarms.
  const sim = spawn(process.env.LIFELINE_BIN, ['simulate', '--url', base, '--key', keys[operator], '--rate', '200',
    '--seconds', '60', '--leaks', '0', '--dead', '0', '--leak-now', String(leak.sensor_id)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let simOut = '';
  sim.stdout.on('data', (d) => { simOut += d; });
  sim.stderr.on('data', (d) => { simOut += d; });
  const started = Date.now();
  const exited = new Promise((r) => sim.on('exit', r));
  try {
    const id = await page.waitForFunction(([known, sensor]) => {
      const a = [...window.lifeline.alarms.values()].find((x) => x.sensor_id === sensor && !known.includes(x.id));
      if (!a) return null;
      const pulsing = document.querySelector(`.pulse[data-alarm-id="${a.id}"]`);
      const drawn = window.lifeline.map.queryRenderedFeatures({ layers: ['alarms'] }).some((f) => f.properties.id === a.id);
      return pulsing && drawn ? a.id : null;
    }, [before, leak.sensor_id], { timeout: 45000, polling: 20 }).then((h) => h.jsonValue());
    const seen = Date.now();
    const a = (await http(`/alarms/${id}`, { role: operator })).json;
    // detected_at is the time stamp of the reading that raised the alarm, set by the
    // simulator when it generated it (by the service's clock, as this script reads it).
    const ms = seen + serverOffsetMs - Date.parse(a.detected_at);
    await shot('risk-simulated-alarm');
    assert(a.sensor_id === leak.sensor_id, `alarm ${id} is for sensor ${a.sensor_id}`);
    assert(ms <= 2000, `alarm ${id} on the map ${ms} ms after its reading`);
    return `alarm ${id} (${a.severity}, ${a.value} %LEL) on the map ${ms} ms after the simulator's alarming reading; `
      + `${seen - started} ms after the simulator started (the gas rule's min_duration_s holds it back)`;
  } finally {
    sim.kill('SIGINT');
    await exited;
    const summary = simOut.split('\n').find((l) => l.startsWith('sent ')) ?? simOut.slice(-200);
    console.log(`     simulator: ${summary.trim()}`);
  }
});

await step('operator moves an alarm through its lifecycle', async () => {
  if (!paths.has('/alarms/{id}/transitions')) return { skip: 'POST /alarms/{id}/transitions is not in the service yet' };
  const btn = await page.$('#alarm-list li[data-alarm-id] button[data-to]');
  if (!btn) return { skip: 'no open alarm with an allowed action' };
  const li = await btn.evaluateHandle((b) => b.closest('li'));
  const id = await li.evaluate((l) => l.dataset.alarmId);
  const to = await btn.getAttribute('data-to');
  await btn.click();
  await page.waitForFunction(([i, s]) => window.lifeline.alarms.get(Number(i))?.status === s, [id, to], { timeout: 5000 });
  const server = await http(`/alarms/${id}`, { role: operator });
  return `alarm ${id} → ${to}${server.json?.status ? ` (server: ${server.json.status})` : ''}`;
});

await step('sensor popup shows a 24 h sparkline', async () => {
  if (!paths.has('/sensors/{id}/readings')) return { skip: 'GET /sensors/{id}/readings is not in the service yet' };
  const push = JSON.parse(process.env.LIFELINE_E2E_ALARM || 'null');
  if (!push) return { skip: 'no sensor with readings' };
  await page.evaluate(([id, at]) => window.lifeline.showSensor(id, at), [push.sensor_id, push.at]);
  await page.waitForSelector(`.sensor-readings[data-sensor="${push.sensor_id}"]`, { timeout: 10000 });
  const svg = await page.$(`.sensor-readings[data-sensor="${push.sensor_id}"] svg.spark path`);
  assert(svg, 'no sparkline');
  await shot('sensor-popup');
});

// ---- excavation view -------------------------------------------------------------------
await step('a drawn dig polygon shows its conflicts', async () => {
  if (!paths.has('/excavation/check')) return { skip: 'POST /excavation/check is not in the service yet' };
  if (!operator) return { skip: 'no operator key' };
  await page.click('#tab-excavation');
  const c = mid(pipe.geometry.coordinates);
  await jump(c, 18);
  await page.click('#draw-polygon');
  const box = await page.$eval('#map', (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  const cx = box.x + box.w / 2; const cy = box.y + box.h / 2; const d = 60;
  for (const [dx, dy] of [[-d, -d], [d, -d], [d, d], [-d, d]]) {
    await page.mouse.click(cx + dx, cy + dy);
    await page.waitForTimeout(350); // not a double-click
  }
  await page.keyboard.press('Enter');
  await page.fill('#dig-top', '0');
  await page.fill('#dig-bottom', '3');
  await page.click('#dig-check');
  await page.waitForSelector('#dig-result:not([hidden])', { timeout: 15000 });
  const n = await page.$$eval('#dig-conflicts li', (l) => l.length);
  assert(n > 0, `no conflict listed (${await page.textContent('#dig-status')})`);
  await idle();
  const hl = await rendered(['conflict-pipes', 'conflict-points']);
  assert(hl.length > 0, 'no conflict highlighted on the map');
  const owners = await page.$$eval('#dig-owners li', (l) => l.length);
  await shot('excavation');
  return `${n} conflicts listed, ${hl.length} highlighted features, ${owners} owners`;
});

await step('a drawn trench (line + width) shows its conflicts', async () => {
  if (!paths.has('/excavation/check')) return { skip: 'POST /excavation/check is not in the service yet' };
  if (!operator) return { skip: 'no operator key' };
  const box = await page.$eval('#map', (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  // Across the pipe, from one side of the map centre to the other; keyboard finish.
  await page.click('#draw-line');
  await page.mouse.click(box.x + box.w / 2 - 80, box.y + box.h / 2 - 80);
  await page.waitForTimeout(350);
  await page.mouse.click(box.x + box.w / 2 + 80, box.y + box.h / 2 + 80);
  await page.keyboard.press('Enter');
  assert(await page.isVisible('#dig-width'), 'width field hidden for a line');
  await page.fill('#dig-width', '2');
  await page.click('#dig-check');
  await page.waitForSelector('#dig-result:not([hidden])', { timeout: 15000 });
  const n = await page.$$eval('#dig-conflicts li', (l) => l.length);
  assert(n > 0, `no conflict for the trench (${await page.textContent('#dig-status')})`);
  await shot('excavation-line');
  // Back to the polygon for the report and the ticket.
  await page.click('#draw-polygon');
  const d = 60; const cx = box.x + box.w / 2; const cy = box.y + box.h / 2;
  for (const [dx, dy] of [[-d, -d], [d, -d], [d, d], [-d, d]]) {
    await page.mouse.click(cx + dx, cy + dy);
    await page.waitForTimeout(350);
  }
  await page.keyboard.press('Enter');
  assert(await page.isHidden('#dig-width'), 'width field shown for a polygon');
  await page.click('#dig-check');
  await page.waitForSelector('#dig-result:not([hidden])', { timeout: 15000 });
  return `${n} conflicts along a 2 m trench`;
});

await step('excavation report downloads as HTML and GeoJSON', async () => {
  if (!paths.has('/excavation/check')) return { skip: 'POST /excavation/check is not in the service yet' };
  if (!operator) return { skip: 'no operator key' };
  const [html] = await Promise.all([page.waitForEvent('download'), page.click('#dl-html')]);
  await html.saveAs(join(out, 'excavation-report.html'));
  const [geo] = await Promise.all([page.waitForEvent('download'), page.click('#dl-geojson')]);
  const p = join(out, 'excavation.geojson');
  await geo.saveAs(p);
  const fc = JSON.parse(await (await import('node:fs/promises')).readFile(p, 'utf8'));
  assert(fc.type === 'FeatureCollection' && fc.features.length > 0, 'GeoJSON report empty');
  return `${fc.features.length} features`;
});

// ---- 3D underground view and cross-section (issue 18) -----------------------------------
/** An operator's pipe as the API gives it: id, kind, coordinates, depths and size. */
const pipeFromApi = async (id, role = operator) => (await http(`/ogc/collections/pipelines/items/${id}`, { role })).json;
const sizeOf = (p) => (p.diameter_mm ?? Math.max(p.section_width_mm ?? 0, p.section_height_mm ?? 0)) / 1000 || 0.2;
const topDepth = (p, f) => {
  const d0 = p.depth_start_m ?? p.depth_end_m; const d1 = p.depth_end_m ?? p.depth_start_m;
  return d0 == null ? null : d0 + (d1 - d0) * f;
};
let view3dPipe = null;
await step('3D: the tubes of a checked dig are drawn at their depth (pixels at the projected positions)', async () => {
  if (!paths.has('/excavation/check') || !operator) return { skip: 'no excavation check or operator key' };
  await page.click('#dig-3d');
  await page.waitForFunction(() => document.body.dataset.view3d === 'ready', null, { timeout: 30000 });
  await idle();
  const st = await page.evaluate(() => {
    const s = window.lifeline.view3d.state;
    return { ex: s.exaggeration, pipes: s.pipes.map((p) => ({ id: p.id, known: p.known, conflict: Boolean(p.conflict), source: p.source })),
      dig: Boolean(s.dig), pitch: window.lifeline.map.getPitch() };
  });
  assert(st.pitch > 30, `map not tilted (pitch ${st.pitch})`);
  assert(st.dig, 'no dig prism');
  const colours = Object.fromEntries((await page.evaluate(() => {
    const l = window.lifeline.styles.network.layers.find((x) => x.id === window.lifeline.pipeLayers[0]);
    return l.paint['line-color'];
  })).slice(2, -1).reduce((a, v, i, arr) => (i % 2 ? a : [...a, [v, arr[i + 1]]]), []));
  // The prism and envelopes off, so the tube's own colour is read.
  await page.uncheck('#view3d-dig');
  await page.uncheck('#view3d-env');
  await idle();
  const conflicts = st.pipes.filter((p) => p.conflict && p.known);
  assert(conflicts.length > 0, 'no conflict pipe with a known depth');
  const tried = [];
  for (const c of conflicts.slice(0, 6)) {
    const f = await pipeFromApi(c.id);
    const p = f.properties;
    if (p.depth_start_m == null && p.depth_end_m == null) continue;
    const coords = f.geometry.coordinates;
    const fr = vertexFractions(coords);
    let hits = 0; let samples = 0; const notes = []; let firstHit = null;
    const points = [];
    for (let i = 1; i < coords.length; i += 1) {
      for (const k of [0.2, 0.35, 0.5, 0.65, 0.8]) points.push([i, k]);
    }
    for (const [i, k] of points) {
      if (samples >= 6) break;
      const at = [coords[i - 1][0] + (coords[i][0] - coords[i - 1][0]) * k, coords[i - 1][1] + (coords[i][1] - coords[i - 1][1]) * k];
      const frac = fr[i - 1] + (fr[i] - fr[i - 1]) * k;
      const depth = topDepth(p, frac) + sizeOf(p) / 2; // the tube's axis
      const q = await page.evaluate(([ll, d]) => ({ under: window.lifeline.view3d.project(ll, d), ground: window.lifeline.view3d.project(ll, 0) }), [at, depth]);
      const box = await page.$eval('#map', (e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; });
      if (!q.under || q.under[0] < 5 || q.under[1] < 5 || q.under[0] > box[2] - 5 || q.under[1] > box[3] - 5) continue;
      // Not under the 3D card (an HTML box over the map).
      const card = await page.$eval('#view3d', (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; });
      const sx = box[0] + q.under[0]; const sy = box[1] + q.under[1];
      if (sx >= card[0] - 3 && sx <= card[2] + 3 && sy >= card[1] - 3 && sy <= card[3] + 3) continue;
      samples += 1;
      const picked = await page.evaluate(([x, y]) => window.lifeline.view3d.pick(x, y)?.id ?? null, [q.under[0], q.under[1]]);
      const rgb = await pixel(page, Math.round(box[0] + q.under[0]), Math.round(box[1] + q.under[1]));
      const want = colours[p.kind].match(/[0-9a-f]{2}/gi).map((h) => parseInt(h, 16));
      const near = rgb.every((v, k) => Math.abs(v - want[k]) <= 60);
      if (picked === c.id && near) { hits += 1; firstHit ??= { seg: i, at }; }
      notes.push(`${picked}@${q.under.map((x) => x.toFixed(0))} ${rgb} (${(q.under[1] - q.ground[1]).toFixed(0)} px below ground)`);
    }
    tried.push(`pipe ${c.id} ${p.kind} ${hits}/${samples}: ${notes.slice(0, 2).join('; ')}`);
    if (samples >= 2 && hits >= Math.ceil(samples / 2)) {
      view3dPipe = { id: c.id, coords, props: p, seg: firstHit.seg, at: firstHit.at };
      break;
    }
  }
  await page.check('#view3d-dig');
  await page.check('#view3d-env');
  await idle();
  await shot('view3d-dig');
  assert(view3dPipe, `no conflict tube found at its projected depth: ${tried.join(' | ')}`);
  return `${st.pipes.length} pipes (${st.pipes.filter((x) => x.known).length} at their depth); ${tried[tried.length - 1]}`;
});

await step('3D: the exaggeration control moves the tubes deeper on screen', async () => {
  if (!view3dPipe) return { skip: 'no 3D view open' };
  const { at } = view3dPipe;
  const y = () => page.evaluate((ll) => window.lifeline.view3d.project(ll, 1.5)[1] - window.lifeline.view3d.project(ll, 0)[1], at);
  const before = await y();
  await page.fill('#view3d-ex', '10');
  await page.dispatchEvent('#view3d-ex', 'input');
  const after = await y();
  assert(after > before * 1.5, `1.5 m below ground: ${before.toFixed(1)} px at ×5, ${after.toFixed(1)} px at ×10`);
  await page.fill('#view3d-ex', '5');
  await page.dispatchEvent('#view3d-ex', 'input');
  return `1.5 m below ground is ${before.toFixed(1)} px down at ×5, ${after.toFixed(1)} px at ×10`;
});

await step('cross-section: the SVG lists the pipes crossing the line in order, with the depths of the API', async () => {
  if (!view3dPipe) return { skip: 'no 3D view open' };
  // A line across the tested pipe, 12 m each side of the tested point (on the ground).
  const c = view3dPipe.coords.slice(view3dPipe.seg - 1, view3dPipe.seg + 1);
  const mid = view3dPipe.at;
  const kx = 111320 * Math.cos((mid[1] * Math.PI) / 180); const ky = 110570;
  const dx = (c[1][0] - c[0][0]) * kx; const dy = (c[1][1] - c[0][1]) * ky; const l = Math.hypot(dx, dy) || 1;
  const ends = [-1, 1].map((s) => [mid[0] + (s * -dy / l * 12) / kx, mid[1] + (s * dx / l * 12) / ky]);
  await page.click('#section-draw');
  const box = await page.$eval('#map', (e) => { const r = e.getBoundingClientRect(); return [r.x, r.y]; });
  for (const e of ends) {
    const p = await page.evaluate((ll) => { const q = window.lifeline.map.project(ll); return [q.x, q.y]; }, e);
    await page.mouse.click(box[0] + p[0], box[1] + p[1]);
    await page.waitForTimeout(350);
  }
  await page.waitForSelector('#section:not([hidden]) svg', { timeout: 10000 });
  const listed = await page.$$eval('#section-svg g.pipe', (gs) => gs.map((g) => ({ id: Number(g.dataset.pipelineId), d: Number(g.dataset.distanceM), depth: g.dataset.depthM == null ? null : Number(g.dataset.depthM) })));
  const sec = await page.evaluate(() => { const s = window.lifeline.view3d.state; return { a: s.section.a, b: s.section.b, win: s.window }; });
  // What the API says: every pipe of the window (as the operator reads it), crossed with the
  // line here (a plane at the line's middle, spherical radii: < 0.5 % off the page's).
  const w = sec.win;
  const items = (await http(`/ogc/collections/pipelines/items?bbox=${[w[0][0], w[0][1], w[1][0], w[1][1]].join(',')}&limit=10000`, { role: operator })).json.features;
  const o = [(sec.a[0] + sec.b[0]) / 2, (sec.a[1] + sec.b[1]) / 2];
  const fx = 111320 * Math.cos((o[1] * Math.PI) / 180); const fy = 110574;
  const xy = (p) => [(p[0] - o[0]) * fx, (p[1] - o[1]) * fy];
  const A = xy(sec.a); const B = xy(sec.b);
  const want = [];
  for (const f of items) {
    const cs = f.geometry.coordinates.map(xy);
    const seg = cs.slice(1).map((q, i) => Math.hypot(q[0] - cs[i][0], q[1] - cs[i][1]));
    const total = seg.reduce((x, y) => x + y, 0);
    let run = 0;
    for (let i = 1; i < cs.length; i += 1) {
      const r = [B[0] - A[0], B[1] - A[1]]; const s = [cs[i][0] - cs[i - 1][0], cs[i][1] - cs[i - 1][1]];
      const den = r[0] * s[1] - r[1] * s[0];
      if (Math.abs(den) > 1e-12) {
        const q = [cs[i - 1][0] - A[0], cs[i - 1][1] - A[1]];
        const t = (q[0] * s[1] - q[1] * s[0]) / den; const u = (q[0] * r[1] - q[1] * r[0]) / den;
        if (t >= 0 && t <= 1 && u >= 0 && u <= 1) want.push({ id: Number(f.id), d: t * Math.hypot(r[0], r[1]), depth: topDepth(f.properties, (run + u * seg[i - 1]) / total) });
      }
      run += seg[i - 1];
    }
  }
  want.sort((x, y) => x.d - y.d);
  assert(listed.length > 0 && listed.some((x) => x.id === view3dPipe.id), `pipe ${view3dPipe.id} not in the section: ${JSON.stringify(listed)}`);
  assert(JSON.stringify(listed.map((x) => x.id)) === JSON.stringify(want.map((x) => x.id)), `section lists ${listed.map((x) => x.id)}, the API's pipes cross in order ${want.map((x) => x.id)}`);
  for (let i = 0; i < want.length; i += 1) {
    assert(Math.abs(listed[i].d - want[i].d) < 0.01 * want[i].d + 0.05, `pipe ${want[i].id} at ${listed[i].d} m, expected ${want[i].d.toFixed(3)} m`);
    if (want[i].depth == null) assert(listed[i].depth == null, `pipe ${want[i].id} has no depth in the API, ${listed[i].depth} in the section`);
    else assert(Math.abs(listed[i].depth - want[i].depth) < 0.005, `pipe ${want[i].id}: depth ${listed[i].depth} in the section, ${want[i].depth.toFixed(3)} from the API`);
  }
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#section-download')]);
  const file = join(out, 'cross-section.svg');
  await dl.saveAs(file);
  const text = await (await import('node:fs/promises')).readFile(file, 'utf8');
  assert(text.startsWith('<svg') && text.includes(`data-pipeline-id="${view3dPipe.id}"`), 'downloaded SVG lacks the pipe');
  await shot('cross-section');
  await page.click('#view3d-close');
  return `${listed.length} pipes across a 24 m line: ${listed.map((x) => `#${x.id} ${x.d.toFixed(1)} m / ${x.depth ?? '?'} m`).join(', ')}`;
});

await step('a ticket is submitted and followed', async () => {
  if (!paths.has('/excavation/tickets')) return { skip: 'POST /excavation/tickets is not in the service yet' };
  if (!operator) return { skip: 'no operator key' };
  await page.fill('#ticket-requester', '张工');
  await page.fill('#ticket-phone', '023-6000 0000');
  await page.fill('#ticket-company', '重庆测试施工有限公司');
  await page.click('#ticket-form button[type=submit]');
  await page.waitForSelector('#ticket-view:not([hidden])', { timeout: 10000 });
  const id = await page.getAttribute('#ticket-view', 'data-ticket-id');
  await shot('ticket');
  return `ticket ${id}: ${(await page.textContent('#ticket-state')).slice(0, 80)}`;
});

await step('an operator records owner responses in the excavation view', async () => {
  if (!paths.has('/excavation/tickets/{id}/responses')) return { skip: 'POST /excavation/tickets/{id}/responses is not in the service yet' };
  if (!operator) return { skip: 'no operator key' };
  const id = await page.getAttribute('#ticket-view', 'data-ticket-id');
  if (!id) return { skip: 'no ticket was submitted' };
  const owners = (await http(`/excavation/tickets/${id}`, { role: operator })).json.owners;
  assert(owners.length > 0, 'the ticket notified no owner');
  await page.waitForSelector('#response-form:not([hidden])', { timeout: 5000 });
  // The first owner: partially marked, with a note.
  const first = owners[0].owner_id;
  await page.selectOption('#resp-owner', String(first));
  await page.selectOption('#resp-status', 'partially_marked');
  await page.fill('#resp-note', '东侧已标示，西侧待复核');
  await page.click('#response-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('resp-msg').textContent.length > 0, null, { timeout: 10000 });
  let tk = (await http(`/excavation/tickets/${id}`, { role: operator })).json;
  let o = tk.owners.find((x) => x.owner_id === first);
  assert(o.status === 'partially_marked' && o.note === '东侧已标示，西侧待复核' && o.responder, `server has ${JSON.stringify(o)}`);
  await page.waitForFunction((n) => document.getElementById('ticket-state').textContent.includes(n), '西侧待复核', { timeout: 10000 });
  await shot('ticket-response');
  // Then every owner marks: the ticket clears and the form goes away.
  for (let i = 0; i < owners.length; i += 1) {
    const sel = await page.$$eval('#resp-owner option', (os) => os.map((x) => x.value));
    if (!sel.length) break;
    await page.selectOption('#resp-owner', sel[0]);
    await page.selectOption('#resp-status', 'marked');
    await page.click('#response-form button[type=submit]');
    await page.waitForFunction((v) => ![...document.querySelectorAll('#resp-owner option')].some((x) => x.value === v)
      || document.getElementById('response-form').hidden, sel[0], { timeout: 10000 });
  }
  await page.waitForSelector('#response-form', { state: 'hidden', timeout: 10000 });
  tk = (await http(`/excavation/tickets/${id}`, { role: operator })).json;
  assert(tk.state === 'cleared', `ticket ${id} is ${tk.state} after every owner marked`);
  assert(await page.getAttribute('#ticket-view', 'data-state') === 'cleared', 'the page does not show cleared');
  // Role-gated like the API: recording responses needs the operator role, decided before
  // the ticket is looked up, so an analyst (who may read the ticket) and a contractor (who
  // may not even see another's ticket) both get 403, which tells nothing about the ticket;
  // the form is not shown to contractors (checked with the contractor's page below).
  for (const [role, want] of [['analyst', 403], ['contractor', 403]]) {
    if (!keys[role]) continue;
    const r = await http(`/excavation/tickets/${id}/responses`, { method: 'POST', role, body: { owner_id: first, status: 'marked' } });
    assert(r.status === want, `an ${role}'s response answered ${r.status}, not ${want}`);
  }
  o = tk.owners.find((x) => x.owner_id === first);
  return `ticket ${id}: ${owners.length} owner(s); ${o.name} partially marked then marked; state ${tk.state}`;
});

await step('keyboard only: a dig polygon drawn with Space, arrow keys and Enter', async () => {
  if (!operator) return { skip: 'no operator key' };
  await page.click('#tab-excavation');
  await page.focus('#draw-polygon');
  await page.keyboard.press('Enter'); // starts drawing and focuses the map
  const pan = async (key) => {
    for (let i = 0; i < 2; i += 1) await page.keyboard.press(key);
    await page.evaluate(() => new Promise((r) => { const m = window.lifeline.map; if (m.isMoving()) m.once('moveend', r); else r(); }));
  };
  await page.keyboard.press('Space');
  await pan('ArrowRight');
  await page.keyboard.press('Space');
  await pan('ArrowDown');
  await page.keyboard.press('Space');
  await page.keyboard.press('Enter');
  const g = await page.evaluate(() => window.lifeline.dig.geometry());
  assert(g?.type === 'Polygon' && g.coordinates[0].length === 4, `not a triangle: ${JSON.stringify(g)}`);
  return await page.textContent('#draw-status');
});

// ---- responsiveness and layout --------------------------------------------------------
await step('frame times while panning', async () => {
  if (!measureFrames) return { skip: 'LIFELINE_E2E_FRAMES not set' };
  await page.click('#tab-network');
  const b = (await http('/layers')).json.layers.find((l) => l.id === 'pipelines').bbox;
  await jump([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], 14);
  const pan = (pans, probes = true) => page.evaluate(([pans, probes]) => new Promise((done) => {
    const m = window.lifeline.map;
    // Two measures: the interval between animation frames (what the user sees; vsync-
    // capped near 16.7 ms), and the main-thread time MapLibre spends rendering each frame.
    const intervals = []; const work = []; const long = [];
    const orig = m._render.bind(m);
    m._render = (t) => { const s = performance.now(); const r = orig(t); work.push(performance.now() - s); return r; };
    // Main-thread tasks over 50 ms of any kind (tile callbacks, events, GC), not only renders.
    const obs = typeof PerformanceObserver !== 'undefined' && PerformanceObserver.supportedEntryTypes?.includes('longtask')
      ? new PerformanceObserver((l) => { for (const e of l.getEntries()) long.push(e.duration); }) : null;
    obs?.observe({ type: 'longtask' });
    let last = performance.now(); let running = probes;
    const tick = (now) => { intervals.push(now - last); last = now; if (running) requestAnimationFrame(tick); };
    if (probes) requestAnimationFrame(tick);
    let i = 0;
    const dirs = [[300, 0], [0, 200], [-300, 0], [0, -200]];
    const step = () => {
      if (i >= pans && !probes) { done({ renders: work.length }); return; }
      if (i >= pans) {
        running = false; m._render = orig; obs?.disconnect();
        const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
        const sum = (a) => a.reduce((x, y) => x + y, 0);
        const f = (a) => ({ n: a.length, mean: sum(a) / a.length, p50: q(a, 0.5), p95: q(a, 0.95), p99: q(a, 0.99), max: Math.max(...a) });
        done({ interval: f(intervals.slice(1)), render: f(work), over16: work.filter((x) => x > 16).length,
          longTasks: { n: long.length, max: long.length ? Math.max(...long) : 0 } });
        return;
      }
      const [dx, dy] = dirs[i % 4]; i += 1;
      m.panBy([dx, dy], { duration: 500, easing: (x) => x });
      m.once('moveend', step);
    };
    step();
  }), [pans, probes]);
  // 40 pans (~20 s, ~200 frames here) so that p99 is a percentile, not the worst frame.
  const stats = await pan(40);
  // The wall-clock time of a render includes the time the main thread is not running (two
  // cores shared with builds and the server): the CPU time of the same work comes from
  // chromium's trace (`tdur` of FireAnimationFrame, the animation-frame callbacks, where
  // MapLibre renders; run without the page's own rAF probe so every one is a map render).
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] });
  const traced = await pan(40, false);
  const trace = JSON.parse((await browser.stopTracing()).toString());
  {
    const events = trace.traceEvents ?? trace;
    const frames = events.filter((e) => e.ph === 'X' && e.name === 'FireAnimationFrame' && e.tdur != null);
    const tasks = events.filter((e) => e.ph === 'X' && e.name === 'RunTask' && e.tdur != null && frames.some((f) => f.tid === e.tid));
    const q = (a, p) => { const v = [...a].sort((x, y) => x - y); return v[Math.min(v.length - 1, Math.floor(p * v.length))]; };
    const cpu = frames.map((e) => e.tdur / 1000); const wall = frames.map((e) => e.dur / 1000);
    stats.cpu = { renders: traced.renders, frames: cpu.length, p50: q(cpu, 0.5), p95: q(cpu, 0.95), p99: q(cpu, 0.99), max: Math.max(...cpu),
      wallP99: q(wall, 0.99), mainTaskCpuMax: Math.max(...tasks.map((e) => e.tdur / 1000)) };
  }
  stats.layers = await page.evaluate(() => window.lifeline.map.getStyle().layers.filter((l) => (l.layout?.visibility ?? 'visible') !== 'none').map((l) => `${l.id}:${l.type}`));
  // Where the page's own costs could be: the same pans without the symbol layer (grid
  // names: text placement runs on the main thread), then without the live event stream.
  await page.evaluate(() => window.lifeline.map.setLayoutProperty('grid-cells-names', 'visibility', 'none'));
  await idle();
  stats.noLabels = await pan(16);
  await page.evaluate(() => window.lifeline.applyVisibility());
  await idle();
  // The same pans over an empty map (background only): what this browser's software GL
  // delivers with nothing to draw, so the figures above can be read against it.
  await page.evaluate(() => { const m = window.lifeline.map; for (const l of m.getStyle().layers) if (l.id !== 'background') m.setLayoutProperty(l.id, 'visibility', 'none'); });
  await idle();
  stats.baseline = await pan(16);
  await page.evaluate(() => window.lifeline.applyVisibility());
  await idle();
  // The browser's own floor, without MapLibre: a bare 1280×800 canvas repainted every
  // animation frame, by WebGL (clear) and by 2D (fill).
  const floor = async (useGl) => {
    const p = await context.newPage();
    await p.setContent('<body style="margin:0"><canvas id="c" width="1280" height="800"></canvas></body>');
    const iv = await p.evaluate((gl) => new Promise((done) => {
      const c = document.getElementById('c');
      const g = gl ? c.getContext('webgl2') : c.getContext('2d');
      const out = []; let last = performance.now(); let n = 0;
      const tick = (now) => {
        out.push(now - last); last = now;
        if (gl) { g.clearColor((n % 10) / 10, 0.5, 0.5, 1); g.clear(g.COLOR_BUFFER_BIT); } else { g.fillStyle = `hsl(${n % 360},50%,50%)`; g.fillRect(0, 0, 1280, 800); }
        n += 1;
        if (n < 90) requestAnimationFrame(tick); else done(out.slice(1));
      };
      requestAnimationFrame(tick);
    }), useGl);
    await p.close();
    const q = (a, x) => { const v = [...a].sort((u, w) => u - w); return v[Math.min(v.length - 1, Math.floor(x * v.length))]; };
    return { n: iv.length, p50: q(iv, 0.5), p95: q(iv, 0.95) };
  };
  stats.floor = { webgl: await floor(true), canvas2d: await floor(false) };
  stats.environment = { gl: await page.evaluate(() => { const g = window.lifeline.map.painter.context.gl; const e = g.getExtension('WEBGL_debug_renderer_info'); return e ? g.getParameter(e.UNMASKED_RENDERER_WEBGL) : g.getParameter(g.RENDERER); }), viewport: '1280x800', preset_bbox: b };
  writeFileSync(join(out, 'frames.json'), JSON.stringify(stats, null, 2));
  const r = (x) => x.toFixed(1);
  // The goal (frames under 16 ms) is asserted on the work MapLibre does per frame on the
  // main thread; the frame interval in this software-GL browser is reported, not asserted
  // (see the empty-map baseline: it is slow with nothing to draw).
  const c = stats.cpu;
  const detail = `render CPU (trace) p50 ${r(c.p50)} ms, p95 ${r(c.p95)} ms, p99 ${r(c.p99)} ms, max ${r(c.max)} ms over ${c.frames} frames`
    + ` (wall p99 ${r(c.wallP99)} ms; longest main-thread task CPU ${r(c.mainTaskCpuMax)} ms);`
    + ` render wall p50 ${r(stats.render.p50)} ms, p95 ${r(stats.render.p95)} ms, p99 ${r(stats.render.p99)} ms, max ${r(stats.render.max)} ms over ${stats.render.n} frames`
    + ` (${stats.over16} over 16 ms; ${stats.longTasks.n} long tasks, max ${r(stats.longTasks.max)} ms);`
    + ` frame interval p50 ${r(stats.interval.p50)} ms, p95 ${r(stats.interval.p95)} ms;`
    + ` without grid names: render p99 ${r(stats.noLabels.render.p99)} ms, interval p50 ${r(stats.noLabels.interval.p50)} ms;`
    + ` empty map: interval p50 ${r(stats.baseline.interval.p50)} ms, render p50 ${r(stats.baseline.render.p50)} ms;`
    + ` bare WebGL canvas: interval p50 ${r(stats.floor.webgl.p50)} ms, 2D canvas ${r(stats.floor.canvas2d.p50)} ms; ${stats.layers.length} visible layers`;
  assert(c.frames >= 50, `only ${c.frames} animation frames in the trace`);
  assert(c.p99 < 16, `MapLibre per-frame main-thread work (CPU) p99 ${r(c.p99)} ms ≥ 16 ms: ${detail}`);
  return detail;
});

await step('frame times while orbiting the 3D view over the densest 500 m', async () => {
  if (!measureFrames) return { skip: 'LIFELINE_E2E_FRAMES not set' };
  const dense = JSON.parse(process.env.LIFELINE_E2E_DENSE || 'null');
  if (!dense) return { skip: 'no LIFELINE_E2E_DENSE given' };
  await page.click('#tab-network');
  const kx = 111320 * Math.cos((dense[1] * Math.PI) / 180); const ky = 110570;
  const bounds = [[dense[0] - 250 / kx, dense[1] - 250 / ky], [dense[0] + 250 / kx, dense[1] + 250 / ky]];
  await page.evaluate((b) => window.lifeline.view3d.open({ bounds: b }), bounds);
  await idle();
  const n = await page.evaluate(() => window.lifeline.view3d.state.pipes.length);
  // Orbit: quarter turns of 2 s each, linear, the camera tilted as the view opens it. One
  // full turn first, untraced (tiles of every heading loaded once), then 12 traced (~24 s,
  // 100–200 frames here, so that p99 is a percentile and not the worst frame).
  const orbit = (turns) => page.evaluate((turns) => new Promise((done) => {
    const m = window.lifeline.map; let i = 0; let renders = 0;
    const count = () => { renders += 1; };
    m.on('render', count);
    const step = () => {
      if (i >= turns) { m.off('render', count); done({ renders }); return; }
      i += 1;
      m.easeTo({ bearing: m.getBearing() + 90, duration: 2000, easing: (x) => x });
      m.once('moveend', step);
    };
    step();
  }), turns);
  await orbit(4);
  await idle();
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] });
  const run = await orbit(12);
  const trace = JSON.parse((await browser.stopTracing()).toString());
  const events = trace.traceEvents ?? trace;
  const frames = events.filter((e) => e.ph === 'X' && e.name === 'FireAnimationFrame' && e.tdur != null);
  const q = (a, x) => { const v = [...a].sort((u, w) => u - w); return v[Math.min(v.length - 1, Math.floor(x * v.length))]; };
  const cpu = frames.map((e) => e.tdur / 1000); const wall = frames.map((e) => e.dur / 1000);
  const stats = { pipes: n, centre: dense, renders: run.renders, frames: cpu.length, p50: q(cpu, 0.5), p95: q(cpu, 0.95), p99: q(cpu, 0.99), max: Math.max(...cpu), wallP99: q(wall, 0.99) };
  writeFileSync(join(out, 'frames-3d.json'), JSON.stringify(stats, null, 2));
  await shot('view3d-orbit');
  await page.evaluate(() => window.lifeline.view3d.close());
  await idle();
  const r = (x) => x.toFixed(1);
  const detail = `${n} pipes in the 500 m window at ${dense.map((x) => x.toFixed(4))}: render CPU (trace) p50 ${r(stats.p50)} ms, p95 ${r(stats.p95)} ms, p99 ${r(stats.p99)} ms, max ${r(stats.max)} ms over ${stats.frames} frames (wall p99 ${r(stats.wallP99)} ms)`;
  assert(stats.frames >= 50, `only ${stats.frames} animation frames in the trace`);
  assert(stats.p99 < 16, `3D per-frame main-thread work (CPU) p99 ${r(stats.p99)} ms ≥ 16 ms: ${detail}`);
  return detail;
});

await step('tablet layout (1024×768 and 768×1024) keeps map and panel usable', async () => {
  for (const [w, h] of [[1024, 768], [768, 1024]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(300);
    const r = await page.evaluate(() => {
      const m = document.getElementById('map').getBoundingClientRect();
      const p = document.getElementById('panel').getBoundingClientRect();
      return { map: [m.width, m.height], panel: [p.width, p.height], scroll: document.documentElement.scrollWidth };
    });
    assert(r.map[0] >= w * 0.6 && r.map[1] >= 300, `map too small at ${w}×${h}: ${r.map}`);
    assert(r.panel[1] > 100 && r.scroll <= w, `panel unusable or page scrolls sideways at ${w}×${h}`);
    await page.evaluate(() => window.lifeline.map.resize());
    await idle();
    await shot(`tablet-${w}x${h}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

await step('keyboard: tabs move with arrow keys and the map takes focus', async () => {
  await page.focus('#tab-network');
  await page.keyboard.press('ArrowRight');
  const sel = await page.getAttribute('#tab-risk', 'aria-selected');
  assert(sel === 'true', 'ArrowRight did not select the risk tab');
  await page.focus('.maplibregl-canvas');
  assert(await page.evaluate(() => document.activeElement.classList.contains('maplibregl-canvas')), 'map not focusable');
  const unlabeled = await page.$$eval('input, select', (els) => els.filter((e) => !e.labels?.length && !e.getAttribute('aria-label') && e.type !== 'hidden').map((e) => e.id || e.outerHTML.slice(0, 60)));
  assert(unlabeled.length === 0, `controls without a label: ${unlabeled.join(', ')}`);
});

await step('3D and cross-section for a viewer: no depth anywhere', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN' });
  const p = await ctx.newPage();
  const bodies = [];
  p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`viewer page: ${m.text()}`); });
  p.on('pageerror', (e) => consoleErrors.push(`viewer page: ${e.message}`));
  p.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) outside.push(r.url()); });
  p.on('response', async (r) => { if (r.url().includes('/ogc/collections/pipelines/items')) bodies.push(await r.text().catch(() => '')); });
  await p.goto(`${base}/`);
  await p.waitForSelector('body[data-ready=true]', { timeout: 30000 });
  const c0 = pipe.geometry.coordinates;
  const at = [(c0[0][0] + c0[1][0]) / 2, (c0[0][1] + c0[1][1]) / 2];
  const kx = 111320 * Math.cos((at[1] * Math.PI) / 180); const ky = 110570;
  const dx = (c0[1][0] - c0[0][0]) * kx; const dy = (c0[1][1] - c0[0][1]) * ky; const l = Math.hypot(dx, dy) || 1;
  const ends = [-1, 1].map((k) => [at[0] + (k * -dy / l * 15) / kx, at[1] + (k * dx / l * 15) / ky]);
  await p.evaluate((c) => window.lifeline.map.jumpTo({ center: c, zoom: 17.5 }), at);
  await p.click('#view3d-here');
  await p.waitForFunction(() => document.body.dataset.view3d === 'ready', null, { timeout: 30000 });
  const st = await p.evaluate(() => window.lifeline.view3d.state.pipes.map((x) => ({ id: x.id, known: x.known })));
  assert(st.length > 0, 'no pipe in the viewer\'s 3D window');
  assert(st.every((x) => !x.known), `a viewer's 3D view draws ${st.filter((x) => x.known).length} pipes at a depth`);
  assert(bodies.length > 0 && bodies.every((b) => !/depth_(start|end)_m|diameter_mm/.test(b)), 'depths or sizes in the viewer\'s pipe items');
  // A section across the pipe: listed, without a depth.
  const q = await p.evaluate(([a, b]) => window.lifeline.view3d.section(a, b).rows.length, ends);
  const g = await p.$$eval('#section-svg g.pipe', (gs) => gs.map((x) => [Number(x.dataset.pipelineId), x.dataset.depthM ?? null]));
  assert(q > 0 && g.some(([id]) => id === pipe.id), `the section across pipe ${pipe.id} lists ${JSON.stringify(g)}`);
  assert(g.length === q && g.every(([, d]) => d === null), `section rows with a depth for a viewer: ${JSON.stringify(g)}`);
  await p.waitForTimeout(300);
  await p.screenshot({ path: join(out, 'view3d-viewer.png') });
  // Clicking the ghosted tube (at the nominal depth) opens what the viewer may read: kind
  // and status, no depth.
  const xy = await p.evaluate((c) => window.lifeline.view3d.project(c, 1.1), at);
  const box = await p.$eval('#map', (e) => { const r = e.getBoundingClientRect(); return [r.x, r.y]; });
  const picked = await p.evaluate(([x, y]) => window.lifeline.view3d.pick(x, y)?.id ?? null, xy);
  assert(picked != null, `no tube at the projected nominal depth ${xy}`);
  await p.mouse.click(box[0] + xy[0], box[1] + xy[1]);
  await p.waitForSelector('.maplibregl-popup dl[data-layer=pipelines]', { timeout: 10000 });
  const opened = Number(await p.getAttribute('.maplibregl-popup dl[data-layer=pipelines]', 'data-id'));
  assert(st.some((x) => x.id === opened), `the popup is for pipe ${opened}, not one of the 3D window's`);
  const text = await p.textContent('.maplibregl-popup');
  assert(!text.includes('埋深') && !text.includes('管径'), `depth or diameter in a viewer's popup: ${text}`);
  await ctx.close();
  return `${st.length} pipes, all ghosted at the nominal depth; section of ${g.length} pipes without depths`;
});

await step('a contractor sees the excavation view but no analyst attributes or alarm actions, and their dig in 3D at the check\'s depths only', async () => {
  if (!keys.contractor) return { skip: 'no contractor key' };
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN' });
  await ctx.addInitScript((k) => sessionStorage.setItem('lifeline.key', k), keys.contractor);
  const p = await ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`contractor page: ${m.text()}`); });
  await p.goto(`${base}/#risk`);
  await p.waitForSelector('body[data-ready=true]', { timeout: 30000 });
  assert((await p.textContent('#whoami')).includes('施工单位'), 'role not shown');
  assert(await p.isVisible('#tab-excavation'), 'no excavation tab for a contractor');
  assert(await p.isHidden('#ticket-open') && await p.isHidden('#response-form'), 'owner response controls shown to a contractor');
  if (paths.has('/alarms')) {
    await p.waitForFunction(() => document.querySelectorAll('#alarm-list li').length > 0, null, { timeout: 10000 });
    assert((await p.$$('#alarm-list button[data-to]')).length === 0, 'alarm actions shown to a contractor');
  }
  await p.click('#tab-network');
  await p.evaluate((id) => window.lifeline.showRecord('pipelines', id, [0, 0]), pipe.id);
  await p.waitForSelector('.maplibregl-popup dl[data-layer=pipelines]');
  const text = await p.textContent('.maplibregl-popup');
  assert(!text.includes('材质') && !text.includes('权属单位'), `analyst attributes shown to a contractor: ${text}`);
  await p.screenshot({ path: join(out, 'contractor.png') });
  // Their own check in 3D: the conflicting pipes at the depth band the check told them, every
  // other pipe ghosted (a contractor reads no depth attributes), no depth in any pipe item.
  if (paths.has('/excavation/check')) {
    const bodies = [];
    p.on('response', async (r) => { if (r.url().includes('/ogc/collections/pipelines/items')) bodies.push(await r.text().catch(() => '')); });
    const r = await p.evaluate(async (cc) => {
      const d = 0.0003;
      const ring = [[cc[0] - d, cc[1] - d], [cc[0] + d, cc[1] - d], [cc[0] + d, cc[1] + d], [cc[0] - d, cc[1] + d], [cc[0] - d, cc[1] - d]];
      const body = { geometry: { type: 'Polygon', coordinates: [ring] }, top_depth_m: 0, bottom_depth_m: 3, method: 'mechanical', work_type: 'e2e',
        start_date: document.getElementById('dig-start').value, end_date: document.getElementById('dig-end').value };
      const res = await fetch('/excavation/check?format=geojson', { method: 'POST', body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${sessionStorage.getItem('lifeline.key')}` } });
      const geo = await res.json();
      await window.lifeline.view3d.openCheck(geo, null, 'e2e');
      const bands = Object.fromEntries(geo.features.filter((f) => f.properties.role === 'pipe').map((f) => [f.properties.pipeline_id, f.properties.pipe_depth_m ?? null]));
      return { bands, pipes: window.lifeline.view3d.state.pipes.map((x) => ({ id: x.id, known: x.known, source: x.source, top: x.known ? x.depth(0) : null })) };
    }, mid(pipe.geometry.coordinates));
    const known = r.pipes.filter((x) => x.known);
    assert(known.length > 0, 'no conflict drawn at its depth for the contractor');
    for (const x of known) {
      assert(x.source === 'check' && r.bands[x.id] && Math.abs(r.bands[x.id][0] - x.top) < 1e-9, `pipe ${x.id} drawn at ${x.top} from ${x.source}, the check's band ${r.bands[x.id]}`);
    }
    assert(r.pipes.filter((x) => !x.known).every((x) => !r.bands[x.id]), 'a conflict with a depth band ghosted');
    await p.waitForTimeout(300);
    for (let i = 0; i < 50 && !bodies.length; i += 1) await p.waitForTimeout(100); // the response's body is read asynchronously
    const bad = bodies.map((b) => /.{80}depth_(start|end)_m.{40}/.exec(b)?.[0]).filter(Boolean);
    assert(bodies.length > 0 && !bad.length, `depths in the contractor's pipe items: ${bad[0] ?? 'no items read'}`);
    await p.screenshot({ path: join(out, 'view3d-contractor.png') });
  }
  await ctx.close();
});

// ---- raster basemap and GCJ-02 (a second instance over the same store) ------------------
const gcjBase = (process.env.LIFELINE_E2E_GCJ_URL || '').replace(/\/$/, '');
const basemapOrigin = process.env.LIFELINE_E2E_BASEMAP || '';
const probe = JSON.parse(process.env.LIFELINE_E2E_GCJ || 'null');
let gp = null;
if (gcjBase) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN' });
  if (operator) await ctx.addInitScript((k) => sessionStorage.setItem('lifeline.key', k), keys[operator]);
  gp = await ctx.newPage();
  gp.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`GCJ-02 page: ${m.text()}`); });
  gp.on('pageerror', (e) => consoleErrors.push(`GCJ-02 page: ${e.message}`));
  gp.on('request', (r) => {
    const u = r.url();
    if (![gcjBase, basemapOrigin, 'data:', 'blob:'].some((o) => o && u.startsWith(o))) outside.push(u);
  });
}
const gIdle = () => gp.evaluate(() => new Promise((r) => {
  const m = window.lifeline.map;
  if (m.loaded() && !m.isMoving() && m.areTilesLoaded()) r(); else m.once('idle', () => r());
}));

/** The colour of one map pixel (a 1×1 screenshot: the first pixel of a PNG's first row is
 * stored as is, whatever the row's filter, since there is nothing left of or above it). */
async function pixel(p, x, y) {
  const png = await p.screenshot({ clip: { x, y, width: 1, height: 1 } });
  let at = 8; const idat = []; let colourType = 0;
  while (at < png.length) {
    const len = png.readUInt32BE(at); const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') colourType = data[9];
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  assert(colourType === 2 || colourType === 6, `unexpected PNG colour type ${colourType}`);
  return [raw[1], raw[2], raw[3]];
}

await step('basemap: a configured raster basemap is drawn under our layers', async () => {
  if (!gp) return { skip: 'no LIFELINE_E2E_GCJ_URL' };
  const rgb = JSON.parse(process.env.LIFELINE_E2E_BASEMAP_RGB || '[0,0,0]');
  await gp.goto(`${gcjBase}/#network`);
  await gp.waitForSelector('body[data-ready=true]', { timeout: 60000 });
  const order = await gp.evaluate(() => window.lifeline.map.getStyle().layers.map((l) => l.id));
  const firstPipe = await gp.evaluate(() => window.lifeline.pipeLayers[0]);
  const pipeAt = order.indexOf(firstPipe);
  assert(order[0] === 'background' && order[1] === 'basemap', `layer order: ${order.slice(0, 4).join(', ')}`);
  assert(order.indexOf('basemap') < order.indexOf(firstPipe), 'basemap above our pipelines');
  await gIdle();
  await gp.screenshot({ path: join(out, 'basemap-gcj02.png') });
  // With every layer of ours hidden, the map shows the basemap's colour, not the background.
  await gp.evaluate(() => { const m = window.lifeline.map; for (const l of m.getStyle().layers) if (l.id !== 'background' && l.id !== 'basemap') m.setLayoutProperty(l.id, 'visibility', 'none'); });
  await gIdle();
  const box = await gp.$eval('#map', (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  const px = await pixel(gp, Math.round(box.x + box.w / 2) + 3, Math.round(box.y + box.h / 2) + 3);
  await gp.evaluate(() => window.lifeline.applyVisibility());
  await gIdle();
  assert(px.every((c, i) => Math.abs(c - rgb[i]) <= 3), `map pixel ${px} is not the basemap's ${rgb}`);
  const attribution = await gp.textContent('.maplibregl-ctrl-attrib');
  assert(attribution.includes('测试底图'), `attribution: ${attribution}`);
  return `basemap under ${order.length - 2} layers of ours (pipelines from index ${pipeAt}); map pixel ${px}; attribution "${attribution.trim()}"`;
});

await step('GCJ-02: features are drawn at their GCJ-02 position', async () => {
  if (!gp || !probe) return { skip: 'no LIFELINE_E2E_GCJ_URL or LIFELINE_E2E_GCJ' };
  const r = await gp.evaluate(async ([pr]) => {
    const L = window.lifeline;
    const m = L.map;
    L.setView('risk');
    const js = L.datum.wgs84ToGcj02(pr.cgcs[0], pr.cgcs[1]);
    const idle = new Promise((ok) => m.once('idle', ok));
    m.jumpTo({ center: pr.gcj, zoom: 17 });
    await idle;
    const near = (ll) => { const p = m.project(ll); return m.queryRenderedFeatures([[p.x - 4, p.y - 4], [p.x + 4, p.y + 4]], { layers: ['risk-points'] }); };
    const at = near(pr.gcj).find((f) => f.id === pr.id || f.properties.id === pr.id);
    const there = near(pr.cgcs).some((f) => f.id === pr.id || f.properties.id === pr.id);
    const a = m.project(pr.gcj); const b = m.project(pr.cgcs);
    return { datum: L.datum.datum(), js, rendered: at?.geometry.coordinates ?? null, there, px: Math.hypot(a.x - b.x, a.y - b.y),
      roundTrip: L.datum.toData(js) };
  }, [probe]);
  await gp.screenshot({ path: join(out, 'gcj02-risk.png') });
  assert(r.datum === 'gcj02', `client datum ${r.datum}`);
  // The client's GCJ-02 (for its GeoJSON) is the service's (for its tiles) to 1e-9°.
  assert(Math.abs(r.js[0] - probe.gcj[0]) < 1e-9 && Math.abs(r.js[1] - probe.gcj[1]) < 1e-9, `JS ${r.js} against Rust ${probe.gcj}`);
  assert(Math.abs(r.roundTrip[0] - probe.cgcs[0]) < 2e-7 && Math.abs(r.roundTrip[1] - probe.cgcs[1]) < 2e-7, `inverse ${r.roundTrip}`);
  assert(r.rendered, `risk point ${probe.id} not drawn at its GCJ-02 position ${probe.gcj}`);
  // Rendered from the tile: within a tile unit (z17 in a z≤16 tile: < 1e-6°).
  assert(Math.abs(r.rendered[0] - probe.gcj[0]) < 2e-6 && Math.abs(r.rendered[1] - probe.gcj[1]) < 2e-6, `drawn at ${r.rendered}, expected ${probe.gcj}`);
  assert(!r.there, 'also drawn at its CGCS2000 position');
  const m = (d) => (d * 111320).toFixed(0);
  return `risk point ${probe.id}: CGCS2000 ${probe.cgcs.map((x) => x.toFixed(6))} drawn at ${r.rendered.map((x) => x.toFixed(6))} `
    + `(offset ${m((probe.gcj[0] - probe.cgcs[0]) * Math.cos(probe.cgcs[1] * Math.PI / 180))} m E, ${m(probe.gcj[1] - probe.cgcs[1])} m N, ${r.px.toFixed(0)} px at z17)`;
});

await step('GCJ-02: a dig drawn over the offset map is checked where it is', async () => {
  if (!gp || !operator || !paths.has('/excavation/check')) return { skip: 'no GCJ-02 page, operator key or excavation check' };
  const c = mid(pipe.geometry.coordinates);
  const g = await gp.evaluate((p) => window.lifeline.datum.toDisplay(p), c);
  await gp.click('#tab-excavation');
  await gp.evaluate((ll) => window.lifeline.map.jumpTo({ center: ll, zoom: 18 }), g);
  await gIdle();
  await gp.click('#draw-polygon');
  const box = await gp.$eval('#map', (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  const cx = box.x + box.w / 2; const cy = box.y + box.h / 2; const d = 40;
  for (const [dx, dy] of [[-d, -d], [d, -d], [d, d], [-d, d]]) {
    await gp.mouse.click(cx + dx, cy + dy);
    await gp.waitForTimeout(350);
  }
  await gp.keyboard.press('Enter');
  await gp.fill('#dig-top', '0');
  await gp.fill('#dig-bottom', '3');
  await gp.click('#dig-check');
  await gp.waitForSelector('#dig-result:not([hidden])', { timeout: 15000 });
  const ids = await gp.$$eval('#dig-conflicts li', (l) => l.map((x) => x.dataset.pipelineId));
  const sent = await gp.evaluate(() => window.lifeline.lastCheck.body.geometry.coordinates[0][0]);
  await gIdle();
  const hl = await gp.evaluate(() => window.lifeline.map.queryRenderedFeatures({ layers: ['conflict-pipes', 'conflict-points'] }).length);
  await gp.screenshot({ path: join(out, 'gcj02-excavation.png') });
  assert(ids.includes(String(pipe.id)), `pipeline ${pipe.id} not among the conflicts ${ids.slice(0, 10)}`);
  assert(hl > 0, 'no conflict highlighted over the offset map');
  return `${ids.length} conflicts including pipeline ${pipe.id}; sent vertex ${sent} (CGCS2000), drawn around ${g.map((x) => x.toFixed(6))}`;
});
if (gp) await gp.context().close();

record('no console errors', consoleErrors.length === 0, consoleErrors.slice(0, 5).join(' | '));
record('nothing fetched from outside the service', outside.length === 0, outside.slice(0, 5).join(' '));

await browser.close();
writeFileSync(join(out, 'report.json'), JSON.stringify({ base, results }, null, 2));
const passed = results.filter((r) => r.ok === true).length;
const skipped = results.filter((r) => r.ok === null).length;
console.log(`artefacts in ${out}`);
console.log(`e2e: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
