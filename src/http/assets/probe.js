// The probe: once a run's streams are open (or queued), does their origin still answer
// anything else? It times a fetch() of /proto and an image from the same origin, and gives
// each up after a timeout. Over HTTP/1.1 with six streams open, both wait for a connection
// that never frees up; over HTTP/2 they are two more streams on the one connection.
'use strict';

window.labProbe = (() => {
  // A new URL every time, so nothing comes from a cache.
  const fresh = () => 'probe=' + Date.now() + '-' + Math.random().toString(36).slice(2);

  // { ms } when it answered, { blocked: true } at the timeout, { error } otherwise.
  async function timeFetch(base, timeoutMs) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const started = performance.now();
    try {
      const response = await fetch(base + '/proto?' + fresh(), { cache: 'no-store', signal: abort.signal });
      await response.text();
      return { ms: Math.round(performance.now() - started) };
    } catch (e) {
      return e.name === 'AbortError' ? { blocked: true } : { error: String(e) };
    } finally {
      clearTimeout(timer);
    }
  }

  function timeImage(base, timeoutMs) {
    return new Promise((resolve) => {
      const img = new Image();
      const started = performance.now();
      const done = (result) => {
        clearTimeout(timer);
        img.onload = img.onerror = null;
        resolve(result);
      };
      const timer = setTimeout(() => { done({ blocked: true }); img.src = ''; }, timeoutMs);
      img.onload = () => done({ ms: Math.round(performance.now() - started) });
      img.onerror = () => done({ error: 'the image did not load' });
      img.src = base + '/lab/probe.svg?' + fresh();
    });
  }

  return { timeFetch, timeImage };
})();
