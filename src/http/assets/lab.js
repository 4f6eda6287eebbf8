// The lab: each Start opens N EventSources on one target and shows, per stream, what the
// browser did. The server's first event on every stream ("connected") says which protocol and
// connection served it. Once the streams settle, each run probes its origin (probe.js), which
// also says what the browser negotiated: an h3 run in a browser that did not use QUIC says so,
// with the command that makes Chromium use it. Each run's section carries the same facts as
// data attributes (data-open, data-waiting, data-connections, data-protocol, data-waiting-on,
// data-probe-fetch, data-probe-image, data-probe-blocked-by, data-negotiated,
// data-server-protocol, data-quic, data-ticked, data-closed, data-refused), and window.labRuns
// the runs themselves, for the browser tests: they read values, not wording.
//
// A stream counts as open when the server's first event ("connected") arrives, not on the
// EventSource's open: a refusal a later try can pass is a 200 with one "refused" event (see
// the "Refused" scenario), which fires open and then error.
'use strict';

const config = JSON.parse(document.getElementById('config').textContent);
const runs = window.labRuns = [];

function hostForUrl(host) {
  return host.includes(':') && !host.startsWith('[') ? '[' + host + ']' : host;
}

// The page's own host, except where the server names one (h3: its listener's address).
function targetBase(kind) {
  const target = config.targets.find((t) => t.kind === kind);
  return target.scheme + '://' + (target.host || hostForUrl(location.hostname)) + ':' + target.port;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

class Stream {
  constructor(run, index, url) {
    this.index = index;
    this.state = 'pending';
    this.events = 0;
    this.protocol = null;
    this.connection = null;
    this.opens = 0;
    this.refusals = 0;
    this.refusal = null;
    this.lastId = null;
    this.gaps = 0;
    this.lastEventIdSent = null;
    this.openMs = null;
    this.started = performance.now();
    this.cell = el('div', 'cell pending');
    this.source = new EventSource(url);
    this.source.addEventListener('connected', (e) => {
      const info = JSON.parse(e.data);
      this.protocol = info.protocol;
      this.connection = info.connection_id;
      this.lastEventIdSent = info.last_event_id;
      this.opens += 1;
      if (this.openMs === null) this.openMs = Math.round(performance.now() - this.started);
      this.state = 'open';
      run.changed();
    });
    // Refused for now: the server said when to come back (retry:), and the browser will.
    this.source.addEventListener('refused', (e) => {
      this.refusal = JSON.parse(e.data);
      this.refusals += 1;
      this.state = 'refused';
      run.changed();
    });
    this.source.onmessage = (e) => {
      const id = Number(e.lastEventId);
      if (this.lastId !== null && id !== this.lastId + 1) this.gaps += 1;
      this.lastId = id;
      this.events += 1;
      run.changed();
    };
    this.source.onerror = () => {
      if (this.source.readyState === EventSource.CLOSED) this.state = 'closed';
      else if (this.state !== 'refused') this.state = this.opens > 0 ? 'reconnecting' : 'pending';
      run.changed();
    };
  }

  stop() {
    this.source.close();
    this.state = 'closed';
  }

  render() {
    this.cell.className = 'cell ' + this.state;
    const lines = [
      '#' + (this.index + 1) + ' <span class="state">' + this.state + '</span>',
      this.protocol ? this.protocol + ' · conn ' + this.connection : 'no connection yet',
      this.events + ' events' + (this.lastId !== null ? ' · id ' + this.lastId : ''),
      'reconnects ' + Math.max(0, this.opens - 1) + (this.gaps ? ' · GAPS ' + this.gaps : ''),
      this.openMs !== null ? 'opened in ' + this.openMs + ' ms' : 'waiting…',
    ];
    if (this.refusal) {
      lines.push('refused ' + this.refusals + '× (' + this.refusal.reason + '), back in ' + this.refusal.retry_ms + ' ms');
    }
    if (this.lastEventIdSent !== null) lines.push('sent Last-Event-ID ' + this.lastEventIdSent);
    this.cell.innerHTML = lines.join('<br>');
  }
}

// The probe starts once the open count has held still this long (or every stream is open).
const SETTLED_MS = 1500;
// ...or, if nothing opened at all, after this long.
const NOTHING_OPENED_MS = 5000;

class Run {
  // extra: more query parameters for every stream, and a label (the "Refused" scenario).
  constructor(kind, count, timeout, retry, probeTimeoutS, extra = {}) {
    this.kind = kind;
    this.label = extra.label || '';
    this.probeTimeoutS = probeTimeoutS;
    this.probe = null;
    this.section = el('section', 'run');
    this.section.dataset.run = kind;
    if (this.label) this.section.dataset.label = this.label;
    const header = el('header');
    const title = el('div');
    title.append(el('strong', '', (this.label ? this.label + ' · ' : '') + kind + ' · ' + targetBase(kind) + ' · ' + count + ' streams'));
    this.summaryNode = el('div', 'summary', 'starting…');
    this.probeNode = el('div', 'probe', 'probe: waiting for the streams to settle…');
    this.negotiatedNode = el('div', 'negotiated', 'negotiated: known after the probe');
    title.append(this.summaryNode, this.probeNode, this.negotiatedNode);
    const again = el('button', '', 'Probe again');
    again.type = 'button';
    again.onclick = () => this.runProbe();
    const stop = el('button', '', 'Stop');
    stop.type = 'button';
    stop.onclick = () => this.stop();
    const buttons = el('div', 'buttons');
    buttons.append(again, stop);
    header.append(title, buttons);
    this.grid = el('div', 'grid');
    this.section.append(header, this.grid);
    document.getElementById('runs').prepend(this.section);

    const query = new URLSearchParams();
    if (timeout !== '') query.set('timeout', timeout);
    if (retry !== '') query.set('retry', retry);
    for (const [key, value] of Object.entries(extra.query || {})) query.set(key, value);
    this.streams = [];
    this.pendingRender = false;
    for (let i = 0; i < count; i += 1) {
      query.set('lab', String(i + 1));
      const stream = new Stream(this, i, targetBase(kind) + '/sse/hello?' + query.toString());
      this.streams.push(stream);
      this.grid.append(stream.cell);
    }
    this.changed();
    this.probeWhenSettled();
  }

  probeWhenSettled() {
    let lastOpen = -1;
    let since = 0;
    const check = () => {
      const open = this.summary().open;
      const now = performance.now();
      if (open !== lastOpen) { lastOpen = open; since = now; }
      const still = now - since;
      if (open === this.streams.length || (open > 0 && still >= SETTLED_MS) || still >= NOTHING_OPENED_MS) {
        this.runProbe();
      } else {
        setTimeout(check, 250);
      }
    };
    check();
  }

  // Time a fetch and an image on this run's origin; the results go on the page, on
  // section.dataset (probeFetch, probeImage: ms, "blocked" or "failed") and on run.probe.
  async runProbe() {
    const base = targetBase(this.kind);
    const timeoutMs = this.probeTimeoutS * 1000;
    delete this.section.dataset.probeFetch;
    delete this.section.dataset.probeImage;
    delete this.section.dataset.probeBlockedBy;
    this.probeNode.textContent = 'probe: timing a fetch and an image from ' + base + '…';
    const [fetched, image] = await Promise.all([
      window.labProbe.timeFetch(base, timeoutMs), window.labProbe.timeImage(base, timeoutMs)]);
    this.probe = { fetch: fetched, image, timeoutMs };
    const data = (r) => (r.ms !== undefined ? String(r.ms) : r.blocked ? 'blocked' : 'failed');
    this.section.dataset.probeFetch = data(fetched);
    this.section.dataset.probeImage = data(image);
    this.section.dataset.negotiated = fetched.protocol || (fetched.ms !== undefined ? 'unknown' : 'none');
    this.section.dataset.serverProtocol = fetched.server || '';
    this.showNegotiated();
    const held = this.heldBy();
    if (fetched.blocked || image.blocked) this.section.dataset.probeBlockedBy = held.limit;
    const why = held.words;
    const words = (r) => (r.ms !== undefined ? r.ms + ' ms'
      : r.blocked ? 'blocked > ' + this.probeTimeoutS + ' s' + (why ? ' (' + why + ')' : '')
        : 'failed: ' + r.error);
    this.probeNode.textContent = 'probe, same origin: fetch /proto ' + words(fetched) +
      ' · image ' + words(image);
  }

  // What the browser negotiated with this origin (the probe's fetch), beside what the server
  // saw; for an h3 run that did not get HTTP/3, that the browser was not told to use QUIC.
  showNegotiated() {
    const fetched = this.probe && this.probe.fetch;
    if (!fetched) return;
    const streams = this.summary().protocol;
    const browser = fetched.protocol || (fetched.ms !== undefined ? 'not reported' : 'nothing (' + (fetched.blocked ? 'blocked' : 'failed') + ')');
    let text = 'negotiated: ' + browser + ' (browser, nextHopProtocol)';
    if (fetched.server) text += ' · ' + fetched.server + ' (server)';
    const noQuic = this.kind === 'h3' && fetched.protocol !== 'h3' && fetched.server !== 'HTTP/3' && streams !== 'HTTP/3';
    if (this.kind === 'h3') this.section.dataset.quic = noQuic ? 'unused' : 'used';
    // A later probe ("Probe again") may find QUIC in use after all.
    this.negotiatedNode.className = noQuic ? 'negotiated notice' : 'negotiated';
    if (noQuic) {
      const got = fetched.protocol || streams || 'no answer';
      const command = el('code', 'quic-command', config.quic_command || '--origin-to-force-quic-on');
      this.negotiatedNode.replaceChildren(got + ' — this browser did not use HTTP/3; start Chromium with ', command);
    } else {
      this.negotiatedNode.textContent = text;
    }
  }

  // What holds the origin's connections, going by what the streams saw: a name for it
  // (data-probe-blocked-by) and the words (the probe's line); '' when nothing does.
  heldBy() {
    const { open, waiting, protocol } = this.summary();
    if (protocol === 'HTTP/2') {
      return waiting ? { limit: 'h2-max-concurrent-streams', words: "the HTTP/2 connection is at the server's max concurrent streams" }
        : { limit: '', words: '' };
    }
    if (protocol === 'HTTP/3') {
      return waiting ? { limit: 'quic-stream-limit', words: "the QUIC connection is at the server's stream limit" }
        : { limit: '', words: '' };
    }
    if (open >= 6) return { limit: 'http1-connections-per-host', words: 'all 6 connections are held by SSE streams' };
    return open ? { limit: 'http1-connections-per-host', words: open + ' connections are held by SSE streams' }
      : { limit: '', words: '' };
  }

  changed() {
    if (this.pendingRender) return;
    this.pendingRender = true;
    // On the next frame, or within 250 ms where frames do not come (a tab in the background):
    // the data attributes stay current either way.
    const render = () => {
      if (!this.pendingRender) return;
      this.pendingRender = false;
      this.render();
    };
    requestAnimationFrame(render);
    setTimeout(render, 250);
  }

  // waitingOn: the limit the waiting streams wait on ('' when none wait, or nothing opened).
  summary() {
    const open = this.streams.filter((s) => s.state === 'open');
    // Refused streams wait on the server's word, closed ones on nothing: neither waits on a limit.
    const refusedNow = this.streams.filter((s) => s.state === 'refused').length;
    const closedNow = this.streams.filter((s) => s.state === 'closed').length;
    const waiting = this.streams.length - open.length - refusedNow - closedNow;
    const connections = new Set(open.map((s) => s.connection)).size;
    const protocol = open.length ? open[0].protocol : null;
    const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');
    let text, waitingOn = '';
    if (refusedNow || closedNow || this.label) {
      text = open.length + ' open, ' + refusedNow + ' refused (coming back), ' + closedNow + ' closed for good' +
        (waiting ? ', ' + waiting + ' waiting' : '');
    } else if (open.length === 0) text = '0 open, ' + waiting + ' waiting';
    else if (protocol === 'HTTP/2') {
      text = open.length + ' open on ' + plural(connections, 'connection');
      text += waiting ? ', ' + waiting + " waiting — HTTP/2, limited by the server's max concurrent streams" : ' — HTTP/2';
      if (waiting) waitingOn = 'h2-max-concurrent-streams';
    } else if (protocol === 'HTTP/3') {
      text = open.length + ' open on ' + plural(connections, 'connection');
      text += waiting ? ', ' + waiting + " waiting — HTTP/3, limited by the server's QUIC stream limit" : ' — HTTP/3';
      if (waiting) waitingOn = 'quic-stream-limit';
    } else if (waiting) {
      text = open.length + ' open, ' + waiting + ' waiting — HTTP/1.1 allows 6 connections per host';
      waitingOn = 'http1-connections-per-host';
    } else {
      text = open.length + ' open on ' + plural(connections, 'connection') + ' — ' + protocol;
    }
    return { text, open: open.length, waiting, connections, protocol, waitingOn };
  }

  render() {
    this.streams.forEach((s) => s.render());
    const summary = this.summary();
    this.summaryNode.textContent = summary.text;
    Object.assign(this.section.dataset, {
      open: summary.open, waiting: summary.waiting, connections: summary.connections,
      protocol: summary.protocol || '', waitingOn: summary.waitingOn,
      ticked: this.streams.filter((s) => s.events > 0).length,
      closed: this.streams.filter((s) => s.state === 'closed').length,
      refused: this.streams.reduce((n, s) => n + s.refusals, 0),
    });
    this.showNegotiated();
  }

  stop() {
    this.streams.forEach((s) => s.stop());
    this.render();
  }
}

// The probe's timeout: the form's value, 8 s unless changed.
const probeTimeoutS = () => Math.max(1, Math.min(120, Number(document.getElementById('probe-timeout').value) || 8));

function start(kind, count, timeout, retry) {
  runs.push(new Run(kind, count, timeout, retry, probeTimeoutS()));
}

document.getElementById('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  const count = Math.max(1, Math.min(300, Number(document.getElementById('streams').value) || 10));
  start(document.getElementById('target').value, count,
        document.getElementById('timeout').value.trim(), document.getElementById('retry').value.trim());
});
// The "Refused" scenario: the same cap answered both ways, side by side. Each run is its own
// slot group; the streams end after 4 s so places free, and come back after 1 s.
const REFUSED_STREAMS = 4;
const REFUSED_SLOTS = 2;
document.getElementById('refused-controls').addEventListener('submit', (e) => {
  e.preventDefault();
  const kind = document.getElementById('target').value;
  const group = Math.random().toString(36).slice(2, 10);
  for (const answer of ['stream', 'status']) {
    runs.push(new Run(kind, REFUSED_STREAMS, '4', '1000', probeTimeoutS(), {
      label: 'refused: ' + answer,
      query: { slots: String(REFUSED_SLOTS), group: group + '-' + answer, refusals: answer },
    }));
  }
});
document.getElementById('stop-all').onclick = () => runs.forEach((r) => r.stop());

// /lab?run=http:10,https:10 starts those runs at once (for screenshots and demos), shown
// top to bottom in the order given (each new run goes on top).
const wanted = new URLSearchParams(location.search).get('run');
if (wanted) {
  for (const part of wanted.split(',').reverse()) {
    const [kind, n] = part.split(':');
    if (config.targets.some((t) => t.kind === kind)) start(kind, Number(n) || 10, '', '');
  }
}
