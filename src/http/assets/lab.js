// The lab: each Start opens N EventSources on one target and shows, per stream, what the
// browser did. The server's first event on every stream ("connected") says which protocol and
// connection served it. window.labRuns exposes the same facts to the browser tests.
'use strict';

const config = JSON.parse(document.getElementById('config').textContent);
const runs = window.labRuns = [];

function hostForUrl(host) {
  return host.includes(':') && !host.startsWith('[') ? '[' + host + ']' : host;
}

function targetBase(kind) {
  const target = config.targets.find((t) => t.kind === kind);
  return target.scheme + '://' + hostForUrl(location.hostname) + ':' + target.port;
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
      run.changed();
    });
    this.source.onopen = () => {
      this.opens += 1;
      if (this.openMs === null) this.openMs = Math.round(performance.now() - this.started);
      this.state = 'open';
      run.changed();
    };
    this.source.onmessage = (e) => {
      const id = Number(e.lastEventId);
      if (this.lastId !== null && id !== this.lastId + 1) this.gaps += 1;
      this.lastId = id;
      this.events += 1;
      run.changed();
    };
    this.source.onerror = () => {
      if (this.source.readyState === EventSource.CLOSED) this.state = 'closed';
      else this.state = this.opens > 0 ? 'reconnecting' : 'pending';
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
    if (this.lastEventIdSent !== null) lines.push('sent Last-Event-ID ' + this.lastEventIdSent);
    this.cell.innerHTML = lines.join('<br>');
  }
}

class Run {
  constructor(kind, count, timeout, retry) {
    this.kind = kind;
    this.section = el('section', 'run');
    this.section.dataset.run = kind;
    const header = el('header');
    const title = el('div');
    title.append(el('strong', '', kind + ' · ' + targetBase(kind) + ' · ' + count + ' streams'));
    this.summaryNode = el('div', 'summary', 'starting…');
    title.append(this.summaryNode);
    const stop = el('button', '', 'Stop');
    stop.type = 'button';
    stop.onclick = () => this.stop();
    header.append(title, stop);
    this.grid = el('div', 'grid');
    this.section.append(header, this.grid);
    document.getElementById('runs').prepend(this.section);

    const query = new URLSearchParams();
    if (timeout !== '') query.set('timeout', timeout);
    if (retry !== '') query.set('retry', retry);
    this.streams = [];
    this.pendingRender = false;
    for (let i = 0; i < count; i += 1) {
      query.set('lab', String(i + 1));
      const stream = new Stream(this, i, targetBase(kind) + '/sse/hello?' + query.toString());
      this.streams.push(stream);
      this.grid.append(stream.cell);
    }
    this.changed();
  }

  changed() {
    if (this.pendingRender) return;
    this.pendingRender = true;
    requestAnimationFrame(() => { this.pendingRender = false; this.render(); });
  }

  summary() {
    const open = this.streams.filter((s) => s.state === 'open');
    const waiting = this.streams.length - open.length;
    const connections = new Set(open.map((s) => s.connection)).size;
    const protocol = open.length ? open[0].protocol : null;
    const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');
    let text;
    if (open.length === 0) text = '0 open, ' + waiting + ' waiting';
    else if (protocol === 'HTTP/2') {
      text = open.length + ' open on ' + plural(connections, 'connection');
      text += waiting ? ', ' + waiting + " waiting — HTTP/2, limited by the server's max concurrent streams" : ' — HTTP/2';
    } else if (waiting) {
      text = open.length + ' open, ' + waiting + ' waiting — HTTP/1.1 allows 6 connections per host';
    } else {
      text = open.length + ' open on ' + plural(connections, 'connection') + ' — ' + protocol;
    }
    return { text, open: open.length, waiting, connections, protocol };
  }

  render() {
    this.streams.forEach((s) => s.render());
    this.summaryNode.textContent = this.summary().text;
  }

  stop() {
    this.streams.forEach((s) => s.stop());
    this.render();
  }
}

function start(kind, count, timeout, retry) {
  runs.push(new Run(kind, count, timeout, retry));
}

document.getElementById('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  const count = Math.max(1, Math.min(300, Number(document.getElementById('streams').value) || 10));
  start(document.getElementById('target').value, count,
        document.getElementById('timeout').value.trim(), document.getElementById('retry').value.trim());
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
