// sselab-worker.js: the SharedWorker behind sselab.js's share: 'worker'. One EventSource per
// URL for every page of the origin; each event goes to every page's port. MIT licence.
//
// A page joins with the last id it delivered and the event names it listens to. The first page
// of a URL opens the stream with ?lastEventId=<its last id>, so a worker that restarted (all
// pages had gone, or it crashed) resumes where the pages left off; pages drop ids they have.
'use strict';

const OPEN = 1;
const streams = new Map(); // url -> { source, ports: Set, names: Set, readyState }

function resumeUrl(url, id) {
  if (id === null || id === undefined || id === '') return url;
  const resumed = new URL(url);
  resumed.searchParams.set('lastEventId', id);
  return resumed.href;
}

function open(url, lastId) {
  const stream = { ports: new Set(), names: new Set(), readyState: 0 };
  stream.source = new EventSource(resumeUrl(url, lastId));
  let previousId = '';
  const send = (message) => stream.ports.forEach((port) => port.postMessage(message));
  // An event without an `id:` line keeps the previous lastEventId: "has an id" = "it changed".
  stream.listen = (name) => {
    if (stream.names.has(name)) return;
    stream.names.add(name);
    stream.source.addEventListener(name, (e) => {
      const hasId = e.lastEventId !== previousId;
      previousId = e.lastEventId;
      send({ kind: 'event', type: name, data: e.data, id: e.lastEventId, hasId });
    });
  };
  stream.listen('message');
  const state = (fire) => () => {
    stream.readyState = stream.source.readyState;
    send({ kind: 'state', readyState: stream.readyState, fire });
  };
  stream.source.addEventListener('open', state('open'));
  stream.source.addEventListener('error', state('error'));
  streams.set(url, stream);
  return stream;
}

function leave(url, port) {
  const stream = streams.get(url);
  if (!stream) return;
  stream.ports.delete(port);
  if (stream.ports.size === 0) {
    stream.source.close();
    streams.delete(url);
  }
}

self.onconnect = (connect) => {
  const port = connect.ports[0];
  port.onmessage = (e) => {
    const message = e.data;
    if (message.kind === 'join') {
      const stream = streams.get(message.url) || open(message.url, message.lastId);
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
