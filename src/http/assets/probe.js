// The probe: once a run's streams are open (or queued), does their origin still answer
// anything else? It times a fetch() of /proto and an image from the same origin, and gives
// each up after a timeout. Over HTTP/1.1 with six streams open, both wait for a connection
// that never frees up; over HTTP/2 and HTTP/3 they are two more streams on the one
// connection. The fetch also says which protocol the browser used for it.
'use strict';

window.labProbe = (() => {
  // A new URL every time, so nothing comes from a cache.
  const fresh = () => 'probe=' + Date.now() + '-' + Math.random().toString(36).slice(2);

  // The protocol the browser used for `url` (its resource timing's nextHopProtocol: "h3",
  // "h2", "http/1.1"), '' when it does not say. The entry is queued just after the body
  // ends, hence the wait for one task; the buffer is emptied after each read so the lab's
  // many probes never fill it.
  async function negotiated(url) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    const entry = performance.getEntriesByName(url).at(-1);
    performance.clearResourceTimings();
    return entry ? entry.nextHopProtocol : '';
  }

  // { ms, protocol, server } when it answered (protocol: what the browser negotiated;
  // server: what /proto says the server saw), { blocked: true } at the timeout, { error }
  // otherwise.
  async function timeFetch(base, timeoutMs) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const started = performance.now();
    const url = base + '/proto?' + fresh();
    try {
      const response = await fetch(url, { cache: 'no-store', signal: abort.signal });
      const body = await response.text();
      const ms = Math.round(performance.now() - started);
      let server = null;
      try { server = JSON.parse(body).http_version; } catch (e) { server = null; }
      return { ms, protocol: await negotiated(url), server };
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
