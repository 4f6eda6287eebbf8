// sselab-worker.js: the SharedWorker behind sselab.js's share: 'worker'. One EventSource per
// URL for every page of the origin; each event goes to every page's port. MIT licence.
//
// A page joins with the last id it delivered and the event names it listens to. When this
// worker replaces one that died, the pages rejoin with their last ids: it waits REJOIN_MS for
// them and opens the stream with ?lastEventId=<the lowest>, so no page misses an event (an
// event in flight when the old worker died may have reached some pages and not others), and
// each page drops the ids it already has.
'use strict';

const OPEN = 1;
// Always listened to; the first two do not mean the stream is open (see sselab.js).
const NOT_OPENING = ['refused', 'token-expired'];
const ALWAYS = ['message', 'connected', ...NOT_OPENING];
const REJOIN_MS = 150;
const streams = new Map(); // url -> { source, ports: Set, names: Set, readyState, resumeFrom }

// Held while this worker runs: pages wait for it, and getting it tells them the worker died.
if (self.navigator && navigator.locks) navigator.locks.request('sselab.js worker', () => new Promise(() => {}));

function resumeUrl(url, id) {
  if (id === null || id === undefined || id === '') return url;
  const resumed = new URL(url);
  resumed.searchParams.set('lastEventId', id);
  return resumed.href;
}

// sselab.js beside this file: how ids compare (numbers, or a stream of many topics' cursors).
importScripts('sselab.js');
const lower = self.SharedEventSource.ids.lower;

// A stream for `url`: opened at once for a fresh page, after REJOIN_MS for a page that rejoins.
function create(url, lastId) {
  const stream = { ports: new Set(), names: new Set(), readyState: 0, resumeFrom: lastId, source: null };
  const send = (message) => stream.ports.forEach((port) => port.postMessage(message));
  let previousId = '';
  const relay = (name) => (e) => {
    // An event without an `id:` line keeps the previous lastEventId: "has an id" = "it changed".
    const hasId = e.lastEventId !== previousId;
    previousId = e.lastEventId;
    // Open is the first real event, not the EventSource's `open`: a refusal is a 200 too.
    if (stream.readyState !== OPEN && !NOT_OPENING.includes(name)) {
      stream.readyState = OPEN;
      send({ kind: 'state', readyState: OPEN, fire: 'open' });
    }
    send({ kind: 'event', type: name, data: e.data, id: e.lastEventId, hasId });
  };
  stream.listen = (name) => {
    if (stream.names.has(name)) return;
    stream.names.add(name);
    if (stream.source) stream.source.addEventListener(name, relay(name));
  };
  const open = () => {
    if (streams.get(url) !== stream) return; // every page left while it waited
    stream.source = new EventSource(resumeUrl(url, stream.resumeFrom));
    const names = [...stream.names];
    stream.names.clear();
    [...ALWAYS, ...names].forEach(stream.listen);
    stream.source.addEventListener('error', () => {
      stream.readyState = stream.source.readyState;
      send({ kind: 'state', readyState: stream.readyState, fire: 'error' });
    });
  };
  setTimeout(open, lastId === null ? 0 : REJOIN_MS);
  streams.set(url, stream);
  return stream;
}

function leave(url, port) {
  const stream = streams.get(url);
  if (!stream) return;
  stream.ports.delete(port);
  if (stream.ports.size === 0) {
    if (stream.source) stream.source.close();
    streams.delete(url);
  }
}

self.onconnect = (connect) => {
  const port = connect.ports[0];
  port.onmessage = (e) => {
    const message = e.data;
    if (message.kind === 'join') {
      let stream = streams.get(message.url);
      if (!stream) stream = create(message.url, message.lastId);
      else if (!stream.source) stream.resumeFrom = lower(stream.resumeFrom, message.lastId);
      stream.ports.add(port);
      message.names.forEach(stream.listen);
      // A page that joins an open stream learns so at once.
      if (stream.readyState !== 0) {
        const fire = stream.readyState === OPEN ? 'open' : null;
        port.postMessage({ kind: 'state', readyState: stream.readyState, fire });
      }
    } else if (message.kind === 'names') {
      const stream = streams.get(message.url);
      if (stream) message.names.forEach(stream.listen);
    } else if (message.kind === 'leave') {
      leave(message.url, port);
    }
  };
  port.start();
};
