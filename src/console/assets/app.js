// lbha web console: polls the JSON endpoints under /console/api/v1/ and draws the views with
// the DOM and hand-made SVG (no dependency, nothing fetched from elsewhere).
'use strict';

const API = '/console/api/v1/';
const $ = (id) => document.getElementById(id);
let me = null;
let eventSeq = 0;
const events = [];
const MAX_EVENTS = 500;
let tick = 0;
let lastStatus = null;
let clusterBusy = false;

function el(tag, attrs, ...kids) {
  const svg = ['svg', 'polyline', 'line', 'text', 'g'].includes(tag);
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.setAttribute('class', v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function replace(id, ...kids) {
  const t = $(id);
  t.replaceChildren(...kids.flat());
}

class LoginNeeded extends Error {}

async function get(name, query) {
  const r = await fetch(API + name + (query ? '?' + query : ''), { credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 401) throw new LoginNeeded();
  let j = null;
  try { j = await r.json(); } catch (e) { j = { errorStr: 'bad answer' }; }
  return { ok: r.ok, status: r.status, j };
}

async function change(line) {
  const r = await fetch(API + 'command', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf || '' },
    body: JSON.stringify({ command: line }),
  });
  let j = {};
  try { j = await r.json(); } catch (e) { /* empty */ }
  if (!r.ok) throw new Error(j.errorStr || ('HTTP ' + r.status));
  return j;
}

function confirmAction(text, extra) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    replace('confirm-extra', extra || []);
    d.returnValue = '';
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
    $('confirm-cancel').focus();
  });
}

function say(msg) { $('status').textContent = msg || ''; }

function stateClass(s) { return 'state state-' + String(s || '').toLowerCase().split(/[^a-z]/)[0]; }

// ---- pair ----
function ago(sec) {
  if (sec === null || sec === undefined) return '';
  sec = Math.round(sec);
  if (sec < 120) return sec + ' s ago';
  if (sec < 7200) return Math.round(sec / 60) + ' min ago';
  return Math.round(sec / 3600) + ' h ago';
}

function drawVrrp(v, status) {
  if (!v.ok) {
    replace('pair-body', el('p', {}, 'VRRP: ', v.j.errorStr || 'not running'));
    return;
  }
  const inst = v.j.instances || [];
  const node = status && status.ok ? status.j : null;
  const title = 'This node' + (node ? ' (pid ' + node.pid + ', generation ' + node.generation + ')' : '');
  replace('pair-body', el('div', { class: 'card' }, el('h3', {}, title),
    inst.length === 0 ? el('p', {}, 'No VRRP instance configured.') : vrrpTable(inst, 'vrrp-table')));
}

// Instances as `show vrrp` gives them (this node's, or a [cluster] peer's).
function vrrpTable(inst, id) {
  const rows = inst.map((i) => el('tr', { 'data-instance': i.name },
    el('td', { 'data-label': 'Instance' }, i.name, ' (', i.interface, ', VRID ', i.vrid, ')'),
    el('td', { 'data-label': 'Role' }, el('span', { class: stateClass(i.state) }, i.state)),
    el('td', { 'data-label': 'Priority' }, i.priority, i.priority !== i.configured_priority ? ' (configured ' + i.configured_priority + ')' : ''),
    el('td', { 'data-label': 'Master' }, i.master || (i.state === 'MASTER' ? 'this node' : 'unknown')),
    el('td', { 'data-label': 'VIPs held' }, (i.vips_held || []).join(', ') || 'none'),
    el('td', { 'data-label': 'Last transition' }, i.last_transition
      ? i.last_transition.from + ' \u2192 ' + i.last_transition.to + ', ' + i.last_transition.reason + ', ' + ago(i.last_transition.ago_sec)
      : 'none')));
  return el('div', { class: 'scroll' }, el('table', { class: 'srv', id },
    el('thead', {}, el('tr', {}, ['Instance', 'Role', 'Priority', 'Master', 'VIPs held', 'Last transition'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows)));
}

function drawCluster(c) {
  if (!c || !c.ok || !c.j || c.j.error === 'no [cluster]' || !c.j.nodes) {
    const why = c && c.j && (c.j.error || c.j.errorStr) ? (c.j.error || c.j.errorStr) : 'not configured.';
    replace('cluster-body', el('p', {}, 'Config sync: ', why));
    return;
  }
  const cards = c.j.nodes.map((n) => el('div', { class: 'card', 'data-node': n.node },
    el('h3', {}, n.node, n.self ? ' (this node)' : ' (peer)'),
    el('dl', {},
      el('dt', {}, 'Reachable'), el('dd', { class: stateClass(n.reachable ? 'up' : 'down') }, n.reachable ? 'yes' : 'no' + (n.error ? ': ' + n.error : '')),
      el('dt', {}, 'Config version'), el('dd', {}, n.version ?? 'unknown'),
      el('dt', {}, 'Hash'), el('dd', {}, n.hash ? String(n.hash).slice(0, 12) : 'unknown'),
      el('dt', {}, 'Sync'), el('dd', {}, n.sync ?? 'unknown'),
      el('dt', {}, 'VRRP'), el('dd', {}, (n.vrrp || []).map((r) => r.instance + ' ' + r.role).join(', ') || 'none'),
      el('dt', {}, 'Last sync'), el('dd', {}, n.last_sync ? new Date(n.last_sync.at * 1000).toLocaleString() + ' ' + n.last_sync.outcome : 'never')),
    n.instances && n.instances.length ? vrrpTable(n.instances, null) : null));
  replace('cluster-body', el('h3', {}, 'Both nodes (config sync)'), el('p', {}, 'Relation: ', c.j.relation || 'unknown (peer unreachable)'), el('div', { class: 'nodes' }, cards));
}

// ---- servers ----
function statRows(j) {
  const out = new Map();
  for (const row of j || []) {
    const o = {};
    for (const f of row) o[f.field.name] = f.value.value;
    out.set(o.pxname + '/' + o.svname, o);
  }
  return out;
}

function serverAction(ref, label, line, danger) {
  return el('button', {
    type: 'button', class: 'action' + (danger ? ' danger' : ''), 'data-action': label,
    'aria-label': label + ' ' + ref,
    onclick: async () => {
      if (!(await confirmAction(label + ' server ' + ref + '?'))) return;
      try { await change(line); say(''); await refresh(true); } catch (e) { say(label + ' ' + ref + ' failed: ' + e.message); }
    },
  }, label);
}

function weightAction(ref, current) {
  return el('button', {
    type: 'button', class: 'action', 'data-action': 'Set weight', 'aria-label': 'Set weight of ' + ref,
    onclick: async () => {
      const input = el('input', { id: 'weight-input', type: 'text', inputmode: 'numeric', value: current, 'aria-label': 'New weight (0-256 or N%)' });
      if (!(await confirmAction('Set the weight of ' + ref + ' (0-256, or a percentage of the configured weight such as 50%):', [input]))) return;
      try { await change('set server ' + ref + ' weight ' + input.value.trim()); say(''); await refresh(true); } catch (e) { say('Set weight of ' + ref + ' failed: ' + e.message); }
    },
  }, 'Set weight');
}

function drawServers(state, stat) {
  if (!state.ok) { replace('servers-body', el('p', {}, state.j.errorStr || 'unavailable')); return; }
  const stats = stat.ok ? statRows(stat.j) : new Map();
  const admin = me && me.role === 'admin';
  const byBackend = new Map();
  for (const s of state.j) {
    if (!byBackend.has(s.be_name)) byBackend.set(s.be_name, []);
    byBackend.get(s.be_name).push(s);
  }
  const parts = [];
  for (const [be, list] of byBackend) {
    const head = ['Server', 'State', 'Check', 'Weight', 'Sessions', 'Queue'];
    if (admin) head.push('Actions');
    const rows = list.map((s) => {
      const ref = be + '/' + s.srv_name;
      const st = stats.get(ref) || {};
      const shown = s.admin !== 'ready' ? s.admin.toUpperCase() : s.status;
      const cells = [
        el('td', { 'data-label': 'Server' }, s.srv_name, ' ', el('small', {}, s.srv_addr + ':' + s.srv_port)),
        el('td', { 'data-label': 'State', class: 'srv-state' }, el('span', { class: stateClass(shown) }, shown)),
        el('td', { 'data-label': 'Check' }, st.check_status || (typeof s.check === 'string' ? s.check : 'none')),
        el('td', { 'data-label': 'Weight', class: 'srv-weight' }, s.weight + (s.weight !== s.initial_weight ? ' (configured ' + s.initial_weight + ')' : '')),
        el('td', { 'data-label': 'Sessions' }, st.scur ?? 0),
        el('td', { 'data-label': 'Queue' }, st.qcur ?? 0),
      ];
      if (admin) {
        cells.push(el('td', { 'data-label': 'Actions' }, el('div', { class: 'actions' },
          serverAction(ref, 'Enable', 'set server ' + ref + ' state ready'),
          serverAction(ref, 'Drain', 'set server ' + ref + ' state drain', true),
          serverAction(ref, 'Disable', 'disable server ' + ref, true),
          weightAction(ref, s.weight))));
      }
      return el('tr', { 'data-server': ref }, cells);
    });
    parts.push(el('h3', {}, 'Backend ', be), el('div', { class: 'scroll' }, el('table', { class: 'srv' },
      el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, rows))));
  }
  if (parts.length === 0) parts.push(el('p', {}, 'No servers.'));
  replace('servers-body', parts);
}

// ---- events ----
function drawEvents() {
  replace('events-body', events.slice().reverse().map((e) => el('li', { 'data-kind': e.kind, class: e.ok ? '' : 'failed' },
    el('time', { datetime: new Date(e.at_ms).toISOString() }, new Date(e.at_ms).toLocaleTimeString()), ' ',
    el('strong', {}, e.kind), ' ', e.subject, ': ', e.text, e.ok ? '' : ' (failed)')));
  if (events.length === 0) replace('events-body', el('li', {}, 'No events yet.'));
}

// ---- VIPs ----
function drawVips(v) {
  if (!v.ok) { replace('vips-body', el('p', {}, v.j.errorStr || 'unavailable')); return; }
  const admin = me && me.role === 'admin';
  const rows = v.j.map((x) => {
    const spec = x.addr + '/' + x.prefix + ' dev ' + x.dev + ' instance ' + x.instance;
    const cells = [
      el('td', { 'data-label': 'Address' }, x.addr + '/' + x.prefix),
      el('td', { 'data-label': 'Device' }, x.dev + (x.label ? ' (' + x.label + ')' : '')),
      el('td', { 'data-label': 'Instance' }, x.instance),
      el('td', { 'data-label': 'Source' }, x.source),
      el('td', { 'data-label': 'Held' }, x.held ? 'held here' : 'not held'),
    ];
    if (admin) {
      cells.push(el('td', { 'data-label': 'Actions' }, x.source === 'runtime' ? serverAction(x.addr + '/' + x.prefix, 'Delete', 'vip del ' + spec, true) : ''));
    }
    return el('tr', { 'data-vip': x.addr + '/' + x.prefix }, cells);
  });
  const head = ['Address', 'Device', 'Instance', 'Source', 'Held'];
  if (admin) head.push('Actions');
  replace('vips-body', rows.length === 0 ? el('p', {}, 'No VIPs.') : el('div', { class: 'scroll' }, el('table', { class: 'srv' },
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, rows))));
}

async function vipChange(op) {
  const spec = $('vip-spec').value.trim();
  if (!spec) { say('Type an address first.'); return; }
  if (!(await confirmAction('vip ' + op + ' ' + spec + '?'))) return;
  try { await change('vip ' + op + ' ' + spec); say(''); $('vip-spec').value = ''; await refresh(true); } catch (e) { say('vip ' + op + ' failed: ' + e.message); }
}

// ---- traffic ----
const W = 900;
const H = 100;

function chart(title, unit, lines) {
  const vals = lines.flatMap((l) => l.data.filter((x) => x !== null));
  const max = Math.max(1, ...vals);
  const n = Math.max(...lines.map((l) => l.data.length), 0);
  // At least a minute wide, so a fresh daemon's first seconds are not a sliver at the edge.
  const span = Math.max(60, n);
  const dx = W / span;
  const svg = el('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + (H + 2), preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  svg.append(el('line', { x1: 0, y1: H + 1, x2: W, y2: H + 1, stroke: '#d0d7de' }));
  lines.forEach((l, k) => {
    const off = span - l.data.length;
    const pts = [];
    l.data.forEach((v, i) => { if (v !== null) pts.push(((off + i) * dx).toFixed(1) + ',' + (H + 1 - (v / max) * H).toFixed(1)); });
    svg.append(el('polyline', { class: 's' + k, points: pts.join(' '), 'data-points': pts.length }));
  });
  const last = (d) => { for (let i = d.length - 1; i >= 0; i--) if (d[i] !== null) return d[i]; return null; };
  const legend = el('div', { class: 'legend' }, lines.map((l, k) => el('span', {}, el('svg', { width: 24, height: 8, 'aria-hidden': 'true' },
    el('line', { x1: 0, y1: 4, x2: 24, y2: 4, class: 's' + k, 'stroke-width': 2 })), ' ', l.name, ': ', last(l.data) ?? '-', unit)));
  return el('figure', { class: 'chart-fig', 'data-samples': n },
    el('figcaption', {}, el('strong', {}, title), ' (max ', max, unit, ', ', n, ' s shown)'), svg, legend);
}

function drawTraffic(t) {
  if (!t.ok) { replace('charts', el('p', {}, t.j.errorStr || 'no traffic history')); return; }
  const sel = $('series');
  const keys = t.j.series.map((s) => s.side + ':' + s.name);
  const current = sel.value;
  if (sel.options.length !== keys.length || [...sel.options].some((o, i) => o.value !== keys[i])) {
    sel.replaceChildren(...t.j.series.map((s) => el('option', { value: s.side + ':' + s.name }, s.side + ' ' + s.name)));
    if (keys.includes(current)) sel.value = current;
  }
  const s = t.j.series.find((x) => x.side + ':' + x.name === sel.value) || t.j.series[0];
  if (!s) { replace('charts', el('p', {}, 'No frontend or backend.')); return; }
  replace('charts',
    chart('Requests per second', '/s', [{ name: 'requests', data: s.req }]),
    chart('Errors per second', '/s', [{ name: '4xx', data: s.e4 }, { name: '5xx', data: s.e5 }]),
    chart('Response time (server, upper bound)', ' ms', [{ name: 'p50', data: s.p50_ms }, { name: 'p95', data: s.p95_ms }, { name: 'p99', data: s.p99_ms }]),
    chart('Active connections', '', [{ name: 'connections', data: s.conns }]));
}

// ---- polling ----
let busy = false;
async function refresh(now) {
  if (busy && !now) return;
  busy = true;
  try {
    const want = (every) => now || tick % every === 0;
    const jobs = [];
    // Servers and charts every 2 s (the stats of a big config are large); the pair and the
    // timeline every second, so a failover shows within about a second.
    if (want(2)) jobs.push(Promise.all([get('servers'), get('stat')]).then(([a, b]) => drawServers(a, b)));
    jobs.push(Promise.all([get('vrrp'), want(5) ? get('status') : null]).then(([v, s]) => {
      if (s) lastStatus = s;
      drawVrrp(v, lastStatus);
    }));
    jobs.push(get('events', 'since=' + eventSeq).then((e) => {
      if (!e.ok) return;
      for (const x of e.j.events) { events.push(x); eventSeq = Math.max(eventSeq, x.seq); }
      events.splice(0, Math.max(0, events.length - MAX_EVENTS));
      drawEvents();
    }));
    if (want(2)) jobs.push(get('traffic').then(drawTraffic));
    // Asking the peer may take up to [cluster] timeout when it is down: not waited for, so it
    // never holds back the rest of the page.
    if (want(2) && !clusterBusy) {
      clusterBusy = true;
      get('cluster').then(drawCluster, () => {}).finally(() => { clusterBusy = false; });
    }
    if (want(3)) jobs.push(get('vips').then(drawVips));
    await Promise.all(jobs);
    say('');
  } catch (e) {
    if (e instanceof LoginNeeded) { showLogin(); return; }
    say('Update failed: ' + e.message);
  } finally {
    busy = false;
  }
}

function showLogin() {
  $('app').hidden = true;
  $('login').hidden = false;
  const q = new URLSearchParams(location.search).get('login');
  const msg = { failed: 'Wrong user or password.', denied: 'This user may not use the console.', busy: 'Too many logins in progress; try again.' }[q];
  if (msg) { $('login-error').textContent = msg; $('login-error').hidden = false; }
  $('user').focus();
}

async function start() {
  let s;
  try { s = await get('session'); } catch (e) { showLogin(); return; }
  if (!s.ok) { showLogin(); return; }
  me = s.j;
  $('login').hidden = true;
  $('app').hidden = false;
  document.body.dataset.role = me.role;
  $('who').textContent = me.user + ' (' + (me.role === 'admin' ? 'admin' : 'read-only') + ')';
  $('vip-form').hidden = me.role !== 'admin';
  $('vip-add').addEventListener('click', () => vipChange('add'));
  $('vip-del').addEventListener('click', () => vipChange('del'));
  $('series').addEventListener('change', () => get('traffic').then(drawTraffic));
  const loop = async () => { await refresh(false); tick++; setTimeout(loop, 1000); };
  loop();
}

document.addEventListener('DOMContentLoaded', start);
