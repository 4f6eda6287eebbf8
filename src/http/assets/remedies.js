// /lab, remedies: N simulated tabs (N SharedEventSource instances in this page) share one
// stream per remedy, and the table shows what each costs. Instances in one page use the same
// Web Lock queue, BroadcastChannel and SharedWorker as real tabs (all are per origin), so the
// server and the browser's socket pool see what N tabs would cause; a page cannot open N real
// tabs without popup permission. One stream, N topics: one page following N feeds, with an
// EventSource per feed or one stream of every feed (FeedsRun below). window.remedyRuns exposes
// the facts to the browser tests.
'use strict';

(function () {
  const config = JSON.parse(document.getElementById('config').textContent);
  const runs = window.remedyRuns = [];
  const $ = (id) => document.getElementById(id);
  const base = (kind) => {
    const target = config.targets.find((t) => t.kind === kind);
    const host = location.hostname.includes(':') ? '[' + location.hostname + ']' : location.hostname;
    return target && target.scheme + '://' + (target.host || host) + ':' + target.port;
  };
  // The server's counters, read over HTTP/2 when there is an https listener, so the read does
  // not queue behind HTTP/1.1 streams on this page's own origin.
  const statsUrl = (base('https') || location.origin) + '/api/stats';
  // The feeds' events are published there too, for the same reason.
  const publishBase = base('https') || location.origin;
  const PUBLISH_EVERY_MS = 300;

  class Tab {
    constructor(run, url) {
      Object.assign(this, { events: 0, lastId: null, gaps: 0, duplicates: 0, connection: null });
      this.source = new SharedEventSource(url, { share: run.share });
      this.source.addEventListener('connected', (e) => {
        this.connection = JSON.parse(e.data).connection_id;
      });
      this.source.onmessage = (e) => {
        const id = Number(e.lastEventId), now = performance.now();
        if (this.lastId !== null && id <= this.lastId) this.duplicates += 1;
        else if (this.lastId !== null && id !== this.lastId + 1) this.gaps += 1;
        const h = run.handover;
        // Across a handover: time without events (since this tab's last one), and since the close.
        if (h && this.handoverMs === undefined && id > h.lastId) {
          this.handoverMs = Math.round(now - this.at);
          this.afterCloseMs = Math.round(now - h.at);
        }
        Object.assign(this, { lastId: id, at: now, events: this.events + 1 });
      };
    }
  }

  class Run {
    constructor(target, remedy, count) {
      Object.assign(this, { target, remedy, count, serverStreams: null, handover: null });
      this.share = remedy === 'h2' ? 'none' : remedy;
      const kind = this.kind = remedy === 'h2' ? 'https' : target;
      this.url = base(kind) + '/sse/hello?lab=remedy-' + (runs.length + 1);
      this.tabs = Array.from({ length: count }, () => new Tab(this, this.url));
      this.row = $('remedy-rows').insertRow(0);
      this.label = remedy + ' · ' + kind + ' · ' + count + ' tabs';
    }

    // Tabs that got every event: open, ticking, nothing lost or repeated, up to date.
    summary() {
      const live = this.tabs.filter((t) => t.source.readyState !== 2);
      const newest = Math.max(...live.map((t) => t.lastId ?? -1));
      const every = live.filter((t) => t.events > 0 && !t.gaps && !t.duplicates && t.lastId >= newest - 1);
      const connections = new Set(live.map((t) => t.connection).filter((c) => c !== null));
      const h = this.handover;
      const waited = live.map((t) => t.handoverMs);
      return {
        every: every.length, live: live.length, connections: connections.size,
        serverStreams: this.serverStreams, share: live[0]?.source.share,
        handover: h && {
          lost: live.reduce((n, t) => n + t.gaps, 0), duplicated: live.reduce((n, t) => n + t.duplicates, 0),
          msWithoutEvents: waited.includes(undefined) ? null : Math.max(...waited),
          msAfterClose: waited.includes(undefined) ? null : Math.max(...live.map((t) => t.afterCloseMs)),
        },
      };
    }

    closeLeader() {
      const leader = this.tabs.find((t) => t.source.isLeader && t.source.readyState !== 2);
      if (!leader) return false;
      const lastId = Math.max(...this.tabs.map((t) => t.lastId ?? -1));
      this.handover = { lastId, at: performance.now() };
      leader.source.close();
      this.tabs = this.tabs.filter((t) => t !== leader);
      return true;
    }

    stop() { this.tabs.forEach((t) => t.source.close()); }

    render() {
      const s = this.summary(), h = s.handover;
      const cells = [this.label + (s.share && s.share !== this.share ? ' (fell back to ' + s.share + ')' : ''),
        s.every + ' / ' + s.live, s.serverStreams ?? '…', s.connections,
        h ? (h.msWithoutEvents ?? '…') + ' ms (' + (h.msAfterClose ?? '…') + ' ms after the close), lost ' +
          h.lost + ', duplicated ' + h.duplicated : '—'];
      this.row.innerHTML = '';
      cells.forEach((text) => { this.row.insertCell().textContent = text; });
    }
  }

  // One feed of a page that follows many: the events it got, in order (each published event's
  // data is `FEED N`, N counting from 1 per feed), and any that came out of order or for
  // another feed.
  class Feed {
    constructor(name) {
      Object.assign(this, { name, events: 0, last: 0, gaps: 0, misrouted: 0, subscribers: null });
    }

    receive(data) {
      const [name, n] = data.split(' ');
      if (name !== this.name) this.misrouted += 1;
      else if (this.last && Number(n) !== this.last + 1) this.gaps += 1;
      this.last = Number(n);
      this.events += 1;
    }
  }

  // A page following N feeds (topics feed-1…feed-N, named per run so runs never see each
  // other's events). 'feeds': an EventSource per feed (/sse/topics/FEED), the way a page does
  // it today: over HTTP/1.1 six get a connection and the rest wait. 'topics': one
  // SharedEventSource of /sse/topics?topic=FEED&… (more than the server's
  // max_topics_per_stream: one per that many), each feed's events told apart by their type,
  // `topic:FEED`. The page publishes to every feed from its first stream's `connected` on.
  class FeedsRun {
    constructor(target, remedy, count) {
      Object.assign(this, { target, remedy, kind: target, serverStreams: null, stopped: false });
      const run = Math.random().toString(36).slice(2, 8);
      this.feeds = Array.from({ length: count }, (_, i) => new Feed('lab-' + run + '-feed-' + (i + 1)));
      this.connections = new Map(); // source -> connection_id
      this.sources = remedy === 'feeds' ? this.feeds.map((feed) => this.perFeed(feed)) : this.oneStream();
      this.row = $('remedy-rows').insertRow(0);
      this.label = remedy === 'feeds'
        ? 'feeds · ' + target + ' · ' + count + ' EventSources'
        : 'topics · ' + target + ' · ' + count + ' feeds on ' + this.sources.length
          + (this.sources.length === 1 ? ' stream' : ' streams');
    }

    perFeed(feed) {
      const source = new EventSource(base(this.kind) + '/sse/topics/' + feed.name);
      this.watch(source);
      source.onmessage = (e) => feed.receive(e.data);
      return source;
    }

    oneStream() {
      const most = config.max_topics_per_stream || this.feeds.length;
      const groups = [];
      for (let at = 0; at < this.feeds.length; at += most) groups.push(this.feeds.slice(at, at + most));
      return groups.map((feeds) => {
        const query = feeds.map((feed) => 'topic=' + feed.name).join('&');
        const source = new SharedEventSource(base(this.kind) + '/sse/topics?' + query, { share: 'none' });
        this.watch(source);
        feeds.forEach((feed) => source.addEventListener('topic:' + feed.name, (e) => feed.receive(e.data)));
        return source;
      });
    }

    watch(source) {
      source.addEventListener('connected', (e) => {
        this.connections.set(source, JSON.parse(e.data).connection_id);
        if (!this.publishing) this.publishing = this.publish();
      });
    }

    // A round posts each feed its next event, over HTTP/2 when there is an https listener;
    // the next round waits for the last, so each feed's events stay in order.
    async publish() {
      this.published = 0;
      this.publishErrors = 0;
      while (!this.stopped) {
        const round = this.published / this.feeds.length + 1;
        await Promise.all(this.feeds.map((feed) => fetch(publishBase + '/api/topics/' + feed.name + '/events', {
          method: 'POST', headers: { 'content-type': 'text/plain' }, body: feed.name + ' ' + round,
        }).then((r) => (r.status === 202 ? r.json() : Promise.reject(new Error(r.status))))
          .then((answer) => { feed.subscribers = answer.subscribers; }, () => { this.publishErrors += 1; })));
        this.published += this.feeds.length;
        await new Promise((resolve) => setTimeout(resolve, PUBLISH_EVERY_MS));
      }
    }

    // Feeds live: they got events. Feeds with every event: none out of order or misrouted.
    // Waiting: streams that never opened (queued in the browser for a connection). Subscribed:
    // feeds the server last said had a subscriber (its answer to a publish).
    summary() {
      const live = this.feeds.filter((feed) => feed.events > 0);
      const opened = this.sources.filter((source) => this.connections.has(source));
      return {
        feeds: this.feeds.length, live: live.length,
        every: live.filter((feed) => !feed.gaps && !feed.misrouted).length,
        waiting: this.sources.length - opened.length, streams: this.sources.length,
        connections: new Set(this.connections.values()).size, serverStreams: this.serverStreams,
        share: this.remedy === 'topics' ? this.sources[0].share : null,
        subscribed: this.feeds.filter((feed) => feed.subscribers > 0).length,
        published: this.published ?? 0, publishErrors: this.publishErrors ?? 0,
      };
    }

    closeLeader() { return false; }

    stop() {
      this.stopped = true;
      this.sources.forEach((source) => source.close());
    }

    render() {
      const s = this.summary();
      const cells = [this.label, s.every + ' / ' + s.feeds + ' feeds' + (s.waiting ? ' (' + s.waiting + ' streams waiting)' : ''),
        s.serverStreams ?? '…', s.connections, '—'];
      this.row.innerHTML = '';
      cells.forEach((text) => { this.row.insertCell().textContent = text; });
    }
  }

  // The server holds: streams open on the running run's listener. A stopped run's row keeps
  // what it showed last, not the count of whatever runs after it.
  async function refresh() {
    const run = runs.at(-1);
    try {
      const stats = await (await fetch(statsUrl, { cache: 'no-store' })).json();
      const byProtocol = run ? stats.streams.open_by_listener[run.kind] || {} : {};
      if (run && runs.at(-1) === run) run.serverStreams = Object.values(byProtocol).reduce((a, b) => a + b, 0);
    } catch (e) { /* the next tick tries again */ }
    runs.forEach((run) => run.render());
  }
  setInterval(refresh, 500);

  $('remedy-controls').addEventListener('submit', (e) => {
    e.preventDefault();
    runs.forEach((run) => run.stop());
    const count = Math.max(1, Math.min(50, Number($('remedy-tabs').value) || 10));
    const [target, remedy] = [$('remedy-target').value, $('remedy').value];
    const feeds = remedy === 'feeds' || remedy === 'topics';
    runs.push(feeds ? new FeedsRun(target, remedy, count) : new Run(target, remedy, count));
  });
  $('remedy-close-leader').onclick = () => runs.length && runs[runs.length - 1].closeLeader();
})();
