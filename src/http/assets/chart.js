// The dashboard's live chart, in plain SVG: open streams per listener and protocol (thin
// lines) over open connections per listener (wide, pale bands) for the last few minutes, so
// a person watches the wall form — HTTP/1.1 streams stop at six, a band under each line —
// and ten HTTP/2 (or HTTP/3) streams ride one connection, far above their band. Fed by the dashboard's /sse/stats listener, one sample a second; the history
// starts when the page opens. window.dashboardChart exposes the series to the tests, and each
// legend item its series and value (data-series, data-value).
'use strict';

window.LiveChart = (() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const WIDTH = 720, HEIGHT = 240, LEFT = 34, RIGHT = 8, TOP = 10, BOTTOM = 22;
  // A browser opens at most this many HTTP/1.1 connections per host: the wall, drawn.
  const PER_HOST = 6;
  const COLORS = { http: '#9a6700', 'https-h1': '#cf222e', https: '#0969da', h3: '#8250df', metrics: '#656d76' };
  // Each listener's usual protocol is drawn solid; the other (h2c on http, say) dotted.
  const USUAL = { http: 'HTTP/1.1', 'https-h1': 'HTTP/1.1', https: 'HTTP/2', h3: 'HTTP/3' };

  const node = (tag, attrs, text) => {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  // 1, 2, 5, 10, 20, 50… : the step for about four gridlines.
  const niceStep = (max) => {
    const raw = max / 4, power = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  };

  return class LiveChart {
    constructor(svg, legend, seconds) {
      this.svg = svg;
      this.legend = legend;
      this.seconds = seconds;
      this.samples = []; // { t, values: { series name: n } }
      this.series = new Map(); // name → { color, dash, label }
      svg.setAttribute('viewBox', '0 0 ' + WIDTH + ' ' + HEIGHT);
    }

    add(stats) {
      const values = {};
      for (const [listener, byProtocol] of Object.entries(stats.streams.open_by_listener)) {
        for (const [protocol, n] of Object.entries(byProtocol)) {
          this.define(listener + ' ' + protocol + ' streams', listener, 'streams', USUAL[listener] === protocol ? '' : '2 3');
          values[listener + ' ' + protocol + ' streams'] = n;
        }
      }
      for (const [listener, n] of Object.entries(stats.connections.open)) {
        this.define(listener + ' connections', listener, 'connections', '');
        values[listener + ' connections'] = n;
      }
      const now = Date.now();
      this.samples.push({ t: now, values });
      while (this.samples.length && this.samples[0].t < now - this.seconds * 1000) this.samples.shift();
      this.draw(now);
    }

    define(name, listener, kind, dash) {
      if (!this.series.has(name)) this.series.set(name, { color: COLORS[listener] || '#1f2328', kind, dash });
    }

    // Only series that were above zero in the window (idle listeners would only add noise),
    // connections first: their bands go under the stream lines.
    shown() {
      const names = [...this.series.keys()].filter((name) => this.samples.some((s) => (s.values[name] || 0) > 0));
      const under = (name) => (this.series.get(name).kind === 'connections' ? 0 : 1);
      return names.sort((a, b) => under(a) - under(b));
    }

    draw(now) {
      const names = this.shown();
      const top = Math.max(PER_HOST + 2, ...this.samples.flatMap((s) => names.map((n) => s.values[n] || 0)));
      const step = niceStep(top);
      const max = Math.ceil(top / step) * step;
      const x = (t) => LEFT + (WIDTH - LEFT - RIGHT) * (1 - (now - t) / (this.seconds * 1000));
      const y = (v) => HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (v / max);
      this.svg.replaceChildren();
      for (let v = 0; v <= max; v += step) {
        this.svg.append(node('line', { x1: LEFT, x2: WIDTH - RIGHT, y1: y(v), y2: y(v), class: 'grid' }),
          node('text', { x: LEFT - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
      }
      this.svg.append(node('line', { x1: LEFT, x2: WIDTH - RIGHT, y1: y(PER_HOST), y2: y(PER_HOST), class: 'wall' }),
        node('text', { x: LEFT + 4, y: y(PER_HOST) - 4, class: 'wall' }, PER_HOST + ' per host: the HTTP/1.1 wall'));
      for (let ago = 0; ago <= this.seconds; ago += 60) {
        const anchor = ago === 0 ? 'end' : ago === this.seconds ? 'start' : 'middle';
        this.svg.append(node('text', { x: x(now - ago * 1000), y: HEIGHT - 6, 'text-anchor': anchor },
          ago ? '−' + ago / 60 + ' min' : 'now'));
      }
      for (const name of names) {
        const { color, kind, dash } = this.series.get(name);
        // A step line: a count holds until the next sample.
        let d = '';
        this.samples.forEach((s, i) => {
          const v = y(s.values[name] || 0);
          d += (i ? 'H' + x(s.t) + 'V' : 'M' + x(s.t) + ',') + v;
        });
        this.svg.append(node('path', { d, stroke: color, 'stroke-dasharray': dash, class: 'series ' + kind, 'data-series': name }));
      }
      const last = this.samples[this.samples.length - 1].values;
      const streamsFirst = names.filter((n) => this.series.get(n).kind === 'streams')
        .concat(names.filter((n) => this.series.get(n).kind === 'connections'));
      this.legend.replaceChildren(...streamsFirst.map((name) => {
        const { color, kind, dash } = this.series.get(name);
        const item = document.createElement('li');
        // The value again as data, for the tests: data-series (the name), data-value (now).
        Object.assign(item.dataset, { series: name, value: last[name] || 0 });
        const swatch = node('svg', { width: 28, height: 10 });
        swatch.append(node('line', { x1: 0, x2: 28, y1: 5, y2: 5, stroke: color, 'stroke-dasharray': dash, class: 'series ' + kind }));
        item.append(swatch, ' ' + name + ': ' + (last[name] || 0));
        return item;
      }));
    }
  };
})();
