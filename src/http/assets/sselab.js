// sselab.js: SharedEventSource, one Server-Sent Events stream shared by every tab of an origin.
// Plain JS, no build step, no dependencies. MIT licence: copy it into your app.
//
//   const source = new SharedEventSource('/sse/hello', { share: 'leader' }); // was: new EventSource(url)
//
// share: 'none'   a plain EventSource behind the same API: one stream (and, over HTTP/1.1, one
//                 of the browser's six connections per host) per tab.
//        'leader' tabs elect one leader per (origin, URL) with the Web Locks API; only the leader
//                 holds an EventSource and relays every event over a BroadcastChannel. When it
//                 closes, the next tab in the lock's queue reopens the stream with
//                 ?lastEventId=<the last id it delivered> (an EventSource cannot set headers),
//                 so the server replays what the old leader never relayed.
//        'worker' a SharedWorker (/sselab-worker.js) holds one EventSource per URL for all tabs.
// Every instance drops events whose id is not greater than the last one it delivered, so a
// handover neither loses nor repeats an event. Without Web Locks + BroadcastChannel (leader) or
// SharedWorker (worker) it falls back to 'none' and warns once in the console.
(function (global) {
  'use strict';

  const CONNECTING = 0, OPEN = 1, CLOSED = 2;
  const WORKER_URL = '/sselab-worker.js';
  const WORKER_LOCK = 'sselab.js worker'; // held by the SharedWorker while it runs
  let warned = false;

  function warnOnce(message) {
    if (!warned) console.warn('sselab.js: ' + message + '; falling back to share: none');
    warned = true;
  }

  // The URL with ?lastEventId=id (the server reads it when there is no Last-Event-ID header).
  function resumeUrl(url, id) {
    if (id === null || id === '') return url;
    const resumed = new URL(url);
    resumed.searchParams.set('lastEventId', id);
    return resumed.href;
  }

  // Ids are compared as numbers when both are numbers, else any new id counts as newer.
  function isNewer(id, last) {
    if (last === null) return true;
    const [a, b] = [Number(id), Number(last)];
    return Number.isFinite(a) && Number.isFinite(b) && id !== '' && last !== '' ? a > b : id !== last;
  }

  // Watches one EventSource and hands each event on as a plain message. An event without an
  // `id:` line keeps the previous lastEventId, so "has an id" means "the id changed".
  function follow(source, names, send) {
    let previousId = '';
    const relay = (type) => (e) => {
      const hasId = e.lastEventId !== previousId;
      previousId = e.lastEventId;
      send({ kind: 'event', type, data: e.data, id: e.lastEventId, hasId });
    };
    const listen = (name) => {
      if (names.has(name)) return;
      names.add(name);
      source.addEventListener(name, relay(name));
    };
    listen('message');
    source.addEventListener('open', () => send({ kind: 'state', readyState: OPEN, fire: 'open' }));
    source.addEventListener('error', () =>
      send({ kind: 'state', readyState: source.readyState, fire: 'error' }));
    return listen;
  }

  class SharedEventSource {
    constructor(url, options = {}) {
      this.url = new URL(url, global.location.href).href;
      this.readyState = CONNECTING;
      this.lastEventId = '';       // the last id this instance delivered
      this.isLeader = false;       // leader: this instance holds the EventSource
      this.onopen = this.onmessage = this.onerror = null;
      this._listeners = new Map(); // event name -> Set of functions
      this._lastId = null;
      this._me = Math.random().toString(36).slice(2);
      let share = options.share || 'none';
      if (share === 'leader' && !(global.navigator && navigator.locks && global.BroadcastChannel)) {
        warnOnce('Web Locks or BroadcastChannel missing');
        share = 'none';
      } else if (share === 'worker' && !global.SharedWorker) {
        warnOnce('SharedWorker missing');
        share = 'none';
      }
      this.share = share;
      if (share === 'leader') this._elect();
      else if (share === 'worker') {
        this._useWorker();
        global.addEventListener('pagehide', () => this.close());
      }
      else this._open(this.url, (message) => this._receive(message));
    }

    addEventListener(name, fn) {
      if (!this._listeners.has(name)) this._listeners.set(name, new Set());
      this._listeners.get(name).add(fn);
      this._want(name);
    }

    removeEventListener(name, fn) {
      const set = this._listeners.get(name);
      if (set) set.delete(fn);
    }

    close() {
      this._stop();
      if (this._release) this._release();     // leader: free the lock, the next tab takes over
      if (this._channel) this._channel.close();
      this._channel = null;
      if (this._port) this._port.postMessage({ kind: 'leave', url: this.url });
    }

    // Closed for good, like an EventSource after close() or a 204. A leader whose stream the
    // server ended keeps the lock, so no other tab reopens what the server stopped.
    _stop() {
      this.readyState = CLOSED;
      this._closed = true;
      if (this._source) this._source.close();
      if (this._abort) this._abort.abort();   // follower: leave the lock's queue
    }

    // Every instance: deliver one message from its source, the leader or the worker.
    _receive(message) {
      if (this._closed) return;
      if (message.kind === 'state') {
        this.readyState = message.readyState;
        if (message.readyState === CLOSED) this._stop(); // final (a 204, say), as for EventSource
        if (message.fire) this._fire(message.fire, new Event(message.fire));
        return;
      }
      if (message.hasId) {
        if (!isNewer(message.id, this._lastId)) return; // already delivered: no duplicate
        this._lastId = message.id;
        this.lastEventId = message.id;
      }
      const event = new MessageEvent(message.type, {
        data: message.data, lastEventId: this.lastEventId, origin: new URL(this.url).origin,
      });
      this._fire(message.type, event);
    }

    _fire(type, event) {
      const handler = this['on' + type];
      if (typeof handler === 'function') handler.call(this, event);
      for (const fn of this._listeners.get(type) || []) fn.call(this, event);
    }

    _open(url, send) {
      this._source = new EventSource(url);
      this._names = new Set();
      this._listen = follow(this._source, this._names, send);
      for (const name of this._listeners.keys()) this._listen(name);
    }

    _want(name) {
      if (this._listen) this._listen(name);
      if (this._channel && !this.isLeader) this._post({ kind: 'names', names: [name] });
      if (this._port) this._port.postMessage({ kind: 'names', url: this.url, names: [name] });
    }

    // leader: wait in the lock's queue; whoever holds the lock holds the EventSource.
    _elect() {
      this._channel = new BroadcastChannel('sselab.js ' + this.url);
      this._channel.onmessage = (e) => this._onChannel(e.data);
      this._abort = new AbortController();
      this._post({ kind: 'hello', from: this._me, names: [...this._listeners.keys()] });
      navigator.locks.request('sselab.js ' + this.url, { signal: this._abort.signal }, () => {
        if (this._closed) return null;
        this.isLeader = true;
        this._abort = null;
        this._post({ kind: 'leader' }); // followers re-tell the names they listen to
        this._receive({ kind: 'state', readyState: CONNECTING });
        this._post({ kind: 'state', readyState: CONNECTING });
        this._open(resumeUrl(this.url, this._lastId), (message) => {
          this._post(message); // to the followers first: delivering may close this instance
          this._receive(message);
        });
        return new Promise((resolve) => { this._release = resolve; }); // held until close()
      }).catch(() => {}); // AbortError: closed while waiting
    }

    _post(message) {
      if (this._channel) this._channel.postMessage(message);
    }

    _onChannel(message) {
      if (message.to && message.to !== this._me) return;
      if (!this.isLeader) {
        if (message.kind === 'leader') this._post({ kind: 'names', names: [...this._listeners.keys()] });
        else if (message.kind === 'event' || message.kind === 'state') this._receive(message);
        return;
      }
      if (message.kind === 'hello' || message.kind === 'names') message.names.forEach(this._listen);
      if (message.kind === 'hello') {
        // A tab that just arrived learns where the stream stands.
        const state = this.readyState;
        this._post({ kind: 'state', readyState: state, fire: state === OPEN ? 'open' : null, to: message.from });
      }
    }

    // worker: one EventSource per URL in a SharedWorker; tell it what we have and want.
    _useWorker() {
      const script = global.SSELAB_WORKER_URL || WORKER_URL;
      const port = this._port = new SharedWorker(script, { name: 'sselab.js' }).port;
      let watching = false;
      port.onmessage = (e) => {
        if (this._port !== port) return;
        // The worker holds this lock while it lives: once it has spoken, getting the lock means
        // it died (crashed or was stopped). Join a new one, which resumes after our last id.
        if (!watching && global.navigator && navigator.locks) {
          watching = true;
          navigator.locks.request(WORKER_LOCK, () => {
            if (!this._closed && this._port === port) this._useWorker();
          });
        }
        this._receive(e.data);
      };
      port.start();
      port.postMessage({ kind: 'join', url: this.url, lastId: this._lastId, names: [...this._listeners.keys()] });
    }
  }

  SharedEventSource.CONNECTING = CONNECTING;
  SharedEventSource.OPEN = OPEN;
  SharedEventSource.CLOSED = CLOSED;
  global.SharedEventSource = SharedEventSource;
})(typeof window !== 'undefined' ? window : self);
