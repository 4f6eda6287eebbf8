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
// Every instance drops events whose id is not greater than the last one it delivered (for a
// stream of many topics, topic by topic), so a handover neither loses nor repeats an event. Without Web Locks + BroadcastChannel (leader) or
// SharedWorker (worker) it falls back to 'none' and warns once in the console.
//
// token: async () => string   the stream carries the token as ?access_token=; when the server
//        ends it with `token-expired` (the token stopped being accepted), it asks for a fresh one
//        and reopens with it and ?lastEventId=, so nothing is missed. With share 'worker' it uses
//        'leader' instead: a SharedWorker cannot call a page's function.
// Refusals: a stream the server refuses for now (a cap, Redis away, shutting down) answers with
// one `refused` event (JSON: status, reason, message, retry_ms) and ends; the browser retries
// after retry_ms. `refusal` holds that JSON until a stream opens, 'refused' listeners get the
// event, and the state stays CONNECTING: OPEN (and `open`) comes with the first real event
// (sselab's `connected`), never with the 200 that carried a refusal.
(function (global) {
  'use strict';

  const CONNECTING = 0, OPEN = 1, CLOSED = 2;
  const WORKER_URL = '/sselab-worker.js';
  const WORKER_LOCK = 'sselab.js worker'; // held by the SharedWorker while it runs
  // Always listened to; the first two do not mean the stream is open.
  const NOT_OPENING = ['refused', 'token-expired'];
  const ALWAYS = ['message', 'connected', ...NOT_OPENING];
  let warned = false;

  function warnOnce(message) {
    if (!warned) console.warn('sselab.js: ' + message + '; falling back to share: none');
    warned = true;
  }

  function withParam(url, name, value) {
    const changed = new URL(url);
    changed.searchParams.set(name, value);
    return changed.href;
  }

  // The URL with ?lastEventId=id (the server reads it when there is no Last-Event-ID header).
  function resumeUrl(url, id) {
    return id === null || id === '' ? url : withParam(url, 'lastEventId', id);
  }

  const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The id of a stream of many topics (/sse/topics?topic=a&topic=b) is sselab's cursor:
  // base64url of a version byte (1), a base, and per topic a 16-bit tag and its id minus the
  // base (unsigned LEB128). Read as a Map 'tag#k' (the k-th topic with that tag) -> id
  // (BigInt), in the cursor's order; null for any other id.
  function cursorIds(id) {
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]+$/.test(id)) return null;
    let bytes;
    try {
      bytes = Uint8Array.from(atob(id.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    } catch (e) { return null; }
    if (bytes[0] !== 1) return null;
    let at = 1;
    const varint = () => {
      let value = 0n, shift = 0n;
      for (;;) {
        if (at >= bytes.length || shift > 63n) throw new Error('cut short');
        const byte = bytes[at++];
        value |= BigInt(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return value;
        shift += 7n;
      }
    };
    try {
      const base = varint(), ids = new Map(), seen = new Map();
      while (at < bytes.length) {
        if (at + 2 > bytes.length) return null;
        const tag = (bytes[at] << 8) | bytes[at + 1];
        at += 2;
        seen.set(tag, (seen.get(tag) || 0) + 1);
        ids.set(tag + '#' + seen.get(tag), base + varint());
      }
      return ids.size ? ids : null;
    } catch (e) { return null; }
  }

  // A cursor for `ids` (a Map as cursorIds gives).
  function writeCursor(ids) {
    const values = [...ids.values()];
    const base = values.reduce((a, b) => (b < a ? b : a));
    const bytes = [1];
    const varint = (value) => {
      for (; value >= 0x80n; value >>= 7n) bytes.push(Number(value & 0x7fn) | 0x80);
      bytes.push(Number(value));
    };
    varint(base);
    for (const [key, value] of ids) {
      const tag = Number(key.split('#')[0]);
      bytes.push(tag >> 8, tag & 0xff);
      varint(value - base);
    }
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // Ids are compared as numbers when both are numbers; two cursors topic by topic (newer: a
  // topic is further on); else any new id counts as newer.
  function isNewer(id, last) {
    if (last === null) return true;
    const [a, b] = [Number(id), Number(last)];
    if (Number.isFinite(a) && Number.isFinite(b) && id !== '' && last !== '') return a > b;
    const [now, before] = [cursorIds(id), cursorIds(last)];
    if (now && before) return [...now].some(([key, value]) => !before.has(key) || value > before.get(key));
    return id !== last;
  }

  // The id to resume from so that neither of two readers misses an event: the lower of two
  // numbers; of two cursors, each topic's lower id (null: a reader that has none yet).
  function lowerId(a, b) {
    if (a === null || b === null) return a === null ? b : a;
    const [x, y] = [Number(a), Number(b)];
    if (Number.isFinite(x) && Number.isFinite(y) && a !== '' && b !== '') return y < x ? b : a;
    const [first, second] = [cursorIds(a), cursorIds(b)];
    if (!first || !second) return a;
    const lowest = new Map(first);
    for (const [key, value] of second) {
      if (!lowest.has(key) || value < lowest.get(key)) lowest.set(key, value);
    }
    return writeCursor(lowest);
  }

  // Watches one EventSource and hands each event on as a plain message. An event without an
  // `id:` line keeps the previous lastEventId, so "has an id" means "the id changed". Open is
  // the first real event, not the EventSource's `open`: a refusal is a 200 too.
  function follow(source, names, send) {
    let previousId = '';
    let open = false;
    const relay = (type) => (e) => {
      const hasId = e.lastEventId !== previousId;
      previousId = e.lastEventId;
      if (!open && !NOT_OPENING.includes(type)) {
        open = true;
        send({ kind: 'state', readyState: OPEN, fire: 'open' });
      }
      send({ kind: 'event', type, data: e.data, id: e.lastEventId, hasId });
    };
    const listen = (name) => {
      if (names.has(name)) return;
      names.add(name);
      source.addEventListener(name, relay(name));
    };
    ALWAYS.forEach(listen);
    source.addEventListener('error', () => {
      open = false;
      send({ kind: 'state', readyState: source.readyState, fire: 'error' });
    });
    return listen;
  }

  class SharedEventSource {
    constructor(url, options = {}) {
      this.url = new URL(url, global.location.href).href;
      this.readyState = CONNECTING;
      this.lastEventId = '';       // the last id this instance delivered
      this.isLeader = false;       // leader: this instance holds the EventSource
      this.refusal = null;         // the last `refused` event's JSON, until a stream opens
      this._token = typeof options.token === 'function' ? options.token : null;
      this.onopen = this.onmessage = this.onerror = null;
      this._listeners = new Map(); // event name -> Set of functions
      this._lastId = null;
      this._me = Math.random().toString(36).slice(2);
      let share = options.share || 'none';
      if (share === 'worker' && this._token) {
        console.warn("sselab.js: a SharedWorker cannot call the token function; using share: 'leader'");
        share = 'leader';
      }
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
      else this._connect((message) => this._receive(message));
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
        if (message.readyState === OPEN) this.refusal = null;
        if (message.readyState === CLOSED) this._stop(); // final (a 204, say), as for EventSource
        if (message.fire) this._fire(message.fire, new Event(message.fire));
        return;
      }
      if (message.type === 'refused') {
        try { this.refusal = JSON.parse(message.data); } catch (e) { this.refusal = { reason: null }; }
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

    // The holder of the EventSource (share 'none', or the leader): open it after the last id
    // delivered, with a fresh token when there is a token function.
    _connect(send, waitMs = 0) {
      if (!this._token) return this._open(resumeUrl(this.url, this._lastId), send);
      Promise.all([this._token(), delay(waitMs)]).then(([token]) => {
        if (this._closed) return;
        this._open(withParam(resumeUrl(this.url, this._lastId), 'access_token', token), send);
      }, (error) => {
        console.warn('sselab.js: the token function failed:', error);
        send({ kind: 'state', readyState: CLOSED, fire: 'error' }); // as a 401 would
      });
    }

    _open(url, send) {
      const names = [...(this._names || []), ...this._listeners.keys()]; // followers' too
      this._source = new EventSource(url);
      this._names = new Set();
      this._listen = follow(this._source, this._names, (message) => {
        send(message);
        if (this._token && message.type === 'token-expired') this._renew(send, message.data);
      });
      names.forEach(this._listen);
    }

    // The token stopped being accepted and the server ended the stream: close it before the
    // browser retries with the old token (a 401, final), and reopen after the stream's retry
    // with a fresh one.
    _renew(send, data) {
      if (this._closed) return;
      this._source.close();
      let waitMs = 0;
      try { waitMs = Number(JSON.parse(data).retry_ms) || 0; } catch (e) { /* reopen at once */ }
      send({ kind: 'state', readyState: CONNECTING });
      this._connect(send, waitMs);
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
        this._connect((message) => {
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
  // How ids compare (the worker resumes from the lowest its pages hold; tests check both).
  SharedEventSource.ids = { isNewer, lower: lowerId };
  global.SharedEventSource = SharedEventSource;
})(typeof window !== 'undefined' ? window : self);
