// deck.gl, loaded when the 3D view first opens (1.1 MB the other views never need): the
// standalone bundles `npm run build` copies into web/vendor/deck.gl/ (web/build.mjs), each a
// classic script that adds its exports to `globalThis.deck`, so they load in order —
// @deck.gl/core (with luma.gl), then /layers, then /mapbox (MapboxOverlay). Same origin,
// nothing from the internet.

const PARTS = ['core', 'layers', 'mapbox'];
let loading = null;

function script(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.async = false;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

/** `globalThis.deck` once the three bundles have run (loaded once, then shared). */
export function loadDeck() {
  loading ??= (async () => {
    const base = new URL('../vendor/deck.gl/', import.meta.url);
    for (const p of PARTS) await script(new URL(`${p}.min.js`, base).href);
    const d = globalThis.deck;
    if (!d?.MapboxOverlay || !d?.PathLayer) throw new Error('deck.gl did not load');
    return d;
  })();
  loading.catch(() => { loading = null; });
  return loading;
}
