// Copies MapLibre GL JS (pinned in package.json, installed by `npm ci`) from node_modules
// into web/vendor/maplibre-gl/, which the service serves with the rest of web/. The client
// is plain ES modules, so this copy is the whole build: no bundler, no transpiler, and
// nothing is fetched from the internet at run time. vendor/ is generated (gitignored).
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'node_modules', 'maplibre-gl');
const out = join(here, 'vendor', 'maplibre-gl');
const pkg = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8'));
const pinned = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).dependencies['maplibre-gl'];
if (pkg.version !== pinned) {
  console.error(`web build: node_modules has maplibre-gl ${pkg.version}, package.json pins ${pinned}; run npm ci`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// The main module loads its worker from the same directory (new URL(..., import.meta.url)).
for (const f of ['maplibre-gl.mjs', 'maplibre-gl-worker.mjs', 'maplibre-gl.css']) {
  copyFileSync(join(src, 'dist', f), join(out, f));
}
copyFileSync(join(src, 'LICENSE.txt'), join(out, 'LICENSE.txt'));
writeFileSync(join(out, 'VERSION'), `${pkg.version}\n`);
console.log(`web build: maplibre-gl ${pkg.version} -> ${out}`);
