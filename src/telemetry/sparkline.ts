/**
 * The status page's plots: the last minutes of a few figures, kept by the page itself in a ring buffer
 * (one sample per poll; a reload starts afresh, the server keeps no history) and drawn as inline SVG
 * polylines, so the page needs no chart library. Browser source, like FORMAT_DURATION_JS.
 */
export const SPARKLINE_JS = `var HISTORY = 300;
function Ring(size) { this.size = size; this.items = []; }
Ring.prototype.push = function (v) { this.items.push(v); if (this.items.length > this.size) this.items.shift(); };
function sparkline(values, width, height) {
  var ns = 'http://www.w3.org/2000/svg';
  var svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', width); svg.setAttribute('height', height); svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  var known = values.filter(function (v) { return typeof v === 'number' && isFinite(v); });
  if (known.length < 2) return svg;
  var max = Math.max.apply(null, known), min = Math.min(0, Math.min.apply(null, known)), span = max - min || 1;
  var step = width / (HISTORY - 1), x0 = width - (values.length - 1) * step, points = [];
  values.forEach(function (v, i) {
    if (typeof v !== 'number' || !isFinite(v)) return;
    points.push((x0 + i * step).toFixed(1) + ',' + (height - 1 - ((v - min) / span) * (height - 2)).toFixed(1));
  });
  var line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points.join(' ')); line.setAttribute('fill', 'none');
  line.setAttribute('stroke', '#2f6fde'); line.setAttribute('stroke-width', '1.5');
  svg.appendChild(line);
  return svg;
}
var plotHistory = {};
function plots(items) {
  var box = document.getElementById('plots'); box.textContent = '';
  items.forEach(function (item) {
    var ring = plotHistory[item[0]] || (plotHistory[item[0]] = new Ring(HISTORY));
    ring.push(item[2]);
    var c = el('div', undefined, 'card plot'); c.setAttribute('data-plot', item[0]);
    c.appendChild(el('div', item[1] + ' · last ' + Math.round(HISTORY / 60) + ' min', 'label'));
    c.appendChild(sparkline(ring.items, 220, 40));
    c.appendChild(el('div', item[3](item[2]), 'now'));
    box.appendChild(c);
  });
}`;
