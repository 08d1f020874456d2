import { FORMAT_DURATION_JS } from './duration';
import { SPARKLINE_JS } from './sparkline';

/**
 * The status page: one static HTML document whose script polls `status.json`
 * every second and redraws. Plain HTML and JS, no build step; it reads only
 * the JSON, so processors and the ingest API share it. Values are inserted as
 * text (never as HTML): error messages cannot inject markup.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
  .sub { color: #5b6575; margin-bottom: 1rem; }
  .cards { display: flex; flex-wrap: wrap; gap: .6rem; }
  .card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .5rem .8rem; min-width: 9rem; }
  .card .label { color: #5b6575; font-size: .8rem; }
  .card .value { font-size: 1.3rem; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; background: #fff; border: 1px solid #dde1e7; }
  th, td { padding: .3rem .7rem; border-bottom: 1px solid #eceff3; text-align: right; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; }
  .ok { color: #1a7f37; } .bad { color: #c0362c; }
  #errors li { margin-bottom: .3rem; } #errors .time { color: #5b6575; }
  #state { font-weight: 600; }
  .plot svg { display: block; margin: .2rem 0; background: #fbfcfd; }
  .plot .now { font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1 id="title">Sluice</h1>
<div class="sub"><span id="state">loading…</span> · updated <span id="updated">never</span></div>
<div class="bad" id="warning"></div>
<div class="cards" id="cards"></div>
<h2>Last minutes</h2>
<div class="cards" id="plots"></div>
<h2 id="partitions-title">Partitions</h2>
<table id="partitions"><thead></thead><tbody></tbody></table>
<h2>Checks</h2>
<table id="checks"><thead><tr><th>check</th><th>state</th><th>detail</th></tr></thead><tbody></tbody></table>
<h2>Recent errors</h2>
<ul id="errors"></ul>
<script>
(function () {
  var fmt = function (n) { return n === null || n === undefined ? '–' : typeof n === 'number' ? n.toLocaleString('en-US') : String(n); };
  ${FORMAT_DURATION_JS}
  var seconds = function (x) { return x === null || x === undefined ? null : formatDuration(x * 1000); };
  var perSecond = function (x) { return fmt(x) + '/s'; };
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function cards(items) {
    var box = document.getElementById('cards'); box.textContent = '';
    items.forEach(function (item) {
      var c = el('div', undefined, 'card'); c.setAttribute('data-metric', item[0]);
      c.appendChild(el('div', item[1], 'label')); c.appendChild(el('div', fmt(item[2]), 'value')); box.appendChild(c);
    });
  }
  ${SPARKLINE_JS}
  function table(id, head, rows) {
    var t = document.getElementById(id);
    if (head) { var h = t.tHead; h.textContent = ''; var tr = el('tr'); head.forEach(function (x) { tr.appendChild(el('th', x)); }); h.appendChild(tr); }
    var b = t.tBodies[0]; b.textContent = '';
    rows.forEach(function (r) { var tr = el('tr'); r.forEach(function (x) { if (x && x.nodeType) { var td = el('td'); td.appendChild(x); tr.appendChild(td); } else tr.appendChild(el('td', fmt(x))); }); b.appendChild(tr); });
  }
  function render(s) {
    var c = s.counters || {};
    if (s.kind === 'stream') {
      document.getElementById('title').textContent = 'Sluice stream ' + s.stream;
      document.title = 'Sluice · ' + s.stream;
      cards([
        ['recordsIn', 'records in', c.recordsIn], ['throughput', 'records/s', s.recordsPerSecond], ['lag', 'consumer lag', s.totalLag],
        ['watermark', 'watermark', s.watermark ? s.watermark.replace('T', ' ').replace(/\\.\\d+Z$/, 'Z') : null],
        ['watermarkDelay', 'watermark delay', seconds(s.watermarkDelaySeconds)],
        ['openWindows', 'open windows', s.openWindows], ['deduplicated', 'duplicates dropped', c.deduplicated],
        ['late', 'late', c.late], ['deadLettered', 'dead-lettered', c.deadLettered],
        ['dlq', 'in DLQ topic', s.sideTopics ? s.sideTopics[s.topic + '.dlq'] : null],
        ['sinkRows', 'rows written', s.sink ? s.sink.rowsWritten : null], ['breaker', 'sink circuit', s.sink ? s.sink.breaker : null],
        ['checkpoints', 'checkpoints', s.checkpoints],
        ['lastCheckpoint', 'last checkpoint', s.lastCheckpointAt ? formatDuration(Date.parse(s.time) - Date.parse(s.lastCheckpointAt)) + ' ago' : null],
        ['uptime', 'up', seconds(s.uptimeSeconds)]
      ]);
      plots([
        ['throughput', 'records/s', s.recordsPerSecond, perSecond], ['lag', 'consumer lag', s.totalLag, fmt],
        ['watermarkDelay', 'watermark delay', s.watermarkDelaySeconds, seconds]
      ]);
      document.getElementById('warning').textContent = s.lateWarning ? 'warning: ' + s.lateWarning : '';
      document.getElementById('partitions-title').textContent = 'Partitions of ' + s.topic + ' (group ' + s.group + ')';
      table('partitions', ['partition', 'position', 'end offset', 'lag', 'state'], s.partitions.map(function (p) {
        return [p.partition, p.position, p.endOffset, p.lag, el('span', p.paused ? 'paused' : 'consuming', p.paused ? 'bad' : 'ok')];
      }));
    } else {
      document.getElementById('title').textContent = 'Sluice ingest API → ' + s.topic;
      document.title = 'Sluice · ingest';
      cards([
        ['accepted', 'events accepted', s.eventsAccepted], ['throughput', 'events/s', s.eventsPerSecond],
        ['requests', 'requests', s.requests], ['rejected', 'requests rejected', s.requestsRejected],
        ['dlq', 'in DLQ topic', s.sideTopics ? s.sideTopics[s.topic + '.dlq'] : null],
        ['uptime', 'up', seconds(s.uptimeSeconds)]
      ]);
      plots([['throughput', 'events/s', s.eventsPerSecond, perSecond]]);
      document.getElementById('partitions-title').textContent = 'Partitions of ' + s.topic;
      table('partitions', ['partition', 'end offset'], (s.partitions || []).map(function (p) { return [p.partition, p.endOffset]; }));
    }
    var state = document.getElementById('state');
    state.textContent = s.ready ? 'ready' : 'not ready'; state.className = s.ready ? 'ok' : 'bad';
    table('checks', null, (s.checks || []).map(function (k) { return [k.name, el('span', k.ok ? 'ok' : 'failing', k.ok ? 'ok' : 'bad'), k.detail]; }));
    var list = document.getElementById('errors'); list.textContent = '';
    var errors = s.recentErrors || [];
    if (errors.length === 0) list.appendChild(el('li', 'none'));
    errors.forEach(function (e) {
      var li = el('li'); li.appendChild(el('span', e.time + ' ', 'time')); li.appendChild(el('span', e.level + ': ', e.level === 'warn' ? '' : 'bad'));
      li.appendChild(el('span', e.msg + (e.err ? ' — ' + e.err : ''))); list.appendChild(li);
    });
    document.getElementById('updated').textContent = new Date().toLocaleTimeString('en-GB');
  }
  function poll() {
    fetch('status.json', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(render)
      .catch(function (err) { var st = document.getElementById('state'); st.textContent = 'unreachable: ' + err.message; st.className = 'bad'; })
      .then(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script>
</body>
</html>
`;
