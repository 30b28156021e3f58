// Copies the client's vendored libraries (pinned in package.json, installed by `npm ci`)
// from node_modules into web/vendor/, which the service serves with the rest of web/:
// MapLibre GL JS (ES modules) into vendor/maplibre-gl/, and deck.gl's standalone bundles
// (`dist.min.js` of @deck.gl/core, /layers and /mapbox: UMD scripts that each add their
// exports to `globalThis.deck`, loaded in that order by js/deck.js when the 3D view first
// opens) into vendor/deck.gl/. The client is plain ES modules, so this copy is the whole
// build: no bundler, no transpiler, and nothing is fetched from the internet at run time.
// vendor/ is generated (gitignored).
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pins = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).dependencies;

/** The installed package `name`, checked against its pin; exits when they differ. */
function installed(name) {
  const src = join(here, 'node_modules', name);
  const pkg = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8'));
  if (pkg.version !== pins[name]) {
    console.error(`web build: node_modules has ${name} ${pkg.version}, package.json pins ${pins[name]}; run npm ci`);
    process.exit(1);
  }
  return { src, version: pkg.version };
}

function fresh(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

// MapLibre: the main module loads its worker from the same directory (new URL(..., import.meta.url)).
{
  const { src, version } = installed('maplibre-gl');
  const out = fresh(join(here, 'vendor', 'maplibre-gl'));
  for (const f of ['maplibre-gl.mjs', 'maplibre-gl-worker.mjs', 'maplibre-gl.css']) {
    copyFileSync(join(src, 'dist', f), join(out, f));
  }
  copyFileSync(join(src, 'LICENSE.txt'), join(out, 'LICENSE.txt'));
  writeFileSync(join(out, 'VERSION'), `${version}\n`);
  console.log(`web build: maplibre-gl ${version} -> ${out}`);
}

// deck.gl: one standalone bundle per package (core carries luma.gl), named after it.
{
  const out = fresh(join(here, 'vendor', 'deck.gl'));
  const versions = [];
  for (const name of ['@deck.gl/core', '@deck.gl/layers', '@deck.gl/mapbox']) {
    const { src, version } = installed(name);
    const short = name.split('/')[1];
    copyFileSync(join(src, 'dist.min.js'), join(out, `${short}.min.js`));
    copyFileSync(join(src, 'LICENSE'), join(out, `LICENSE-${short}`));
    versions.push(`${name} ${version}`);
  }
  writeFileSync(join(out, 'VERSION'), `${versions.join('\n')}\n`);
  console.log(`web build: ${versions.join(', ')} -> ${out}`);
}
