// /lab, remedies: N simulated tabs (N SharedEventSource instances in this page) share one
// stream per remedy, and the table shows what each costs. Instances in one page use the same
// Web Lock queue, BroadcastChannel and SharedWorker as real tabs (all are per origin), so the
// server and the browser's socket pool see what N tabs would cause; a page cannot open N real
// tabs without popup permission. window.remedyRuns exposes the facts to the browser tests.
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
      const kind = remedy === 'h2' ? 'https' : target;
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

  // The server holds: streams open on the run's listener (all runs on it together).
  async function refresh() {
    try {
      const stats = await (await fetch(statsUrl, { cache: 'no-store' })).json();
      for (const run of runs) {
        const kind = run.remedy === 'h2' ? 'https' : run.target;
        const byProtocol = stats.streams.open_by_listener[kind] || {};
        run.serverStreams = Object.values(byProtocol).reduce((a, b) => a + b, 0);
      }
    } catch (e) { /* the next tick tries again */ }
    runs.forEach((run) => run.render());
  }
  setInterval(refresh, 500);

  $('remedy-controls').addEventListener('submit', (e) => {
    e.preventDefault();
    runs.forEach((run) => run.stop());
    const count = Math.max(1, Math.min(50, Number($('remedy-tabs').value) || 10));
    runs.push(new Run($('remedy-target').value, $('remedy').value, count));
  });
  $('remedy-close-leader').onclick = () => runs.length && runs[runs.length - 1].closeLeader();
})();
