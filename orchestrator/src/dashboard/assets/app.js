// The operations dashboard: plain JavaScript, no dependencies.
// Everything from the server is set with textContent (never parsed as HTML).
'use strict';

(() => {
  const meta = (name) => {
    const m = document.querySelector(`meta[name="${name}"]`);
    return m ? m.content : '';
  };
  const $ = (id) => document.getElementById(id);

  // The dashboard's mount point as a directory (where this script is), and the API
  // relative to it; both with a trailing slash.
  const HOME = new URL('.', document.currentScript.src);
  const API = new URL((meta('orchestrator-api') || '../api/v1').replace(/\/*$/, '/'), HOME);
  // This process's instance id ('' without a store): its operations run "here".
  const HERE = meta('orchestrator-instance');
  const TOKEN_KEY = 'orchestrator.token';
  const PAGE_SIZE = 50;
  const LIST_EVERY_MS = 2000;
  const ACTIVE = new Set(['PENDING', 'RUNNING']);
  const X_KEYS = ['epoch', 'step', 'iteration', 'batch', 'index'];

  const state = {
    offset: 0,
    total: 0,
    infos: new Map(), // id -> the last OperationInfo seen
    rows: new Map(), // id -> <tr>
    streamKey: '',
    stream: null, // AbortController of the event stream
    listTimer: 0,
    listing: false,
    needsToken: false,
    detail: null, // { id, metrics: [], cursor, loading, next }
  };

  class AuthError extends Error {}

  function headers(extra) {
    const h = Object.assign({ Accept: 'application/json' }, extra || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // One API call: the envelope's body, or an Error with the envelope's code and message.
  async function api(path, init) {
    const options = Object.assign({ cache: 'no-store' }, init || {});
    options.headers = headers(init && init.headers);
    const res = await fetch(new URL(path, API), options);
    if (res.status === 401) {
      askForToken(sessionStorage.getItem(TOKEN_KEY) ? 'The token was refused.' : '');
      throw new AuthError('unauthorised');
    }
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok || !body || body.success === false) {
      const error = body && body.error;
      throw new Error(error ? `${error.code}: ${error.message}` : `HTTP ${res.status}`);
    }
    return body;
  }

  function say(text, isError) {
    const line = $('status-line');
    line.textContent = text;
    line.classList.toggle('error', !!isError);
  }

  function fail(e) {
    if (!(e instanceof AuthError) && e.name !== 'AbortError') say(e.message, true);
  }

  // ---- the token ------------------------------------------------------------------

  function askForToken(message) {
    state.needsToken = true;
    stopStream();
    clearTimeout(state.listTimer);
    $('token-form').hidden = false;
    say(message || 'This API needs a token.', !!message);
    $('token').focus();
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    $('token-form').hidden = true;
    state.needsToken = false;
    say('');
    refresh();
    if (state.detail) openDetail(state.detail.id);
  });

  // ---- formatting -------------------------------------------------------------------

  function duration(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return '—';
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const two = (n) => String(n).padStart(2, '0');
    return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
  }

  function time(iso) {
    return iso ? new Date(iso).toLocaleString() : '—';
  }

  function elapsed(info) {
    const from = info.started_at || info.created_at;
    if (!from) return '—';
    const to = info.completed_at ? Date.parse(info.completed_at) : Date.now();
    return duration((to - Date.parse(from)) / 1000);
  }

  function eta(info) {
    const e = info.progress && info.progress.eta_seconds;
    return ACTIVE.has(info.status) && typeof e === 'number' ? duration(e) : '—';
  }

  function where(info) {
    if (info.host_url) return 'host ' + info.host_url;
    if (!info.instance_id || info.instance_id === HERE) return 'here';
    return 'replica ' + info.instance_id.slice(0, 8);
  }

  function percent(info) {
    const p = Number(info.progress && info.progress.percentage);
    return Number.isFinite(p) ? Math.min(100, Math.max(0, p)) : 0;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A link to an operation's detail (its id as the text).
  function opLink(id) {
    const link = el('a', 'op-link', id);
    link.href = '#' + encodeURIComponent(id);
    return link;
  }

  // ---- the list -----------------------------------------------------------------------

  function newRow(id) {
    const tr = el('tr', 'op');
    tr.dataset.id = id;
    const idCell = el('td', 'id');
    const link = el('a', 'open', id);
    link.href = '#' + encodeURIComponent(id);
    idCell.append(link);
    const progress = el('td', 'progress-cell');
    const box = el('div', 'progress');
    const track = el('div', 'track');
    track.append(el('div', 'bar'));
    box.append(track, el('span', 'pct'));
    progress.append(box);
    tr.append(idCell, el('td', 'kind'), el('td', 'description'), el('td', 'status'), progress,
      el('td', 'step'), el('td', 'elapsed'), el('td', 'eta'), el('td', 'where'));
    return tr;
  }

  function renderRow(tr, info) {
    const pct = percent(info);
    tr.dataset.status = info.status;
    tr.querySelector('.kind').textContent = info.operation_type;
    tr.querySelector('.description').textContent = info.description || '';
    const status = tr.querySelector('.status');
    status.textContent = info.status;
    status.className = 'status s-' + info.status;
    const bar = tr.querySelector('.bar');
    bar.style.width = pct + '%';
    bar.dataset.percent = pct.toFixed(1);
    tr.querySelector('.pct').textContent = pct.toFixed(1) + '%';
    tr.querySelector('.step').textContent = (info.progress && info.progress.current_step) || '';
    tr.querySelector('.elapsed').textContent = elapsed(info);
    tr.querySelector('.eta').textContent = eta(info);
    tr.querySelector('.where').textContent = where(info);
    tr.classList.toggle('selected', !!state.detail && state.detail.id === info.operation_id);
  }

  function query() {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(state.offset) });
    const status = $('filter-status').value;
    if (status) q.set('status', status);
    const kind = $('filter-kind').value.trim();
    if (kind) q.set('operation_type', kind);
    return q;
  }

  async function refresh() {
    clearTimeout(state.listTimer);
    if (state.needsToken || state.listing) return;
    // A hidden tab reads nothing; it refreshes when shown again (visibilitychange).
    if (document.hidden) return;
    state.listing = true;
    try {
      const body = await api('operations?' + query());
      renderList(body);
      if (!state.stream) say(liveText());
    } catch (e) {
      fail(e);
    } finally {
      state.listing = false;
      if (!state.needsToken) state.listTimer = setTimeout(refresh, LIST_EVERY_MS);
    }
  }

  function renderList(body) {
    const list = Array.isArray(body.data) ? body.data : [];
    state.total = body.total_count || 0;
    if (state.offset > 0 && list.length === 0 && state.total > 0) {
      state.offset = Math.max(0, state.total - PAGE_SIZE);
      return;
    }
    const tbody = $('ops').tBodies[0];
    const keep = new Set();
    for (const info of list) {
      const id = info.operation_id;
      keep.add(id);
      const known = state.infos.get(id);
      // An event may be fresher than the list read: keep the newer of the two.
      const fresher = known && isAfter(known, info) ? known : info;
      state.infos.set(id, fresher);
      let tr = state.rows.get(id);
      if (!tr) {
        tr = newRow(id);
        state.rows.set(id, tr);
      }
      renderRow(tr, fresher);
      tbody.append(tr); // moves it into list order
    }
    for (const [id, tr] of state.rows) {
      if (!keep.has(id)) {
        tr.remove();
        state.rows.delete(id);
        state.infos.delete(id);
      }
    }
    $('empty').hidden = list.length > 0;
    const first = list.length ? state.offset + 1 : 0;
    $('page-info').textContent = `${first}–${state.offset + list.length} of ${state.total}`;
    $('prev').disabled = state.offset === 0;
    $('next').disabled = state.offset + PAGE_SIZE >= state.total;
    rememberKinds(list);
    follow([...keep].filter((id) => ACTIVE.has(state.infos.get(id).status)));
  }

  // Whether record `a` is further along than `b`: a later attempt, or the end of the
  // same one (see endedBefore); between two active views of one attempt, the higher
  // percentage.
  function isAfter(a, b) {
    const bothRunning = ACTIVE.has(a.status) && ACTIVE.has(b.status);
    if ((a.attempt || 1) !== (b.attempt || 1) || !bothRunning) return endedBefore(a, b);
    return percent(a) > percent(b);
  }

  // Whether `known` is the end of the attempt `info` is an earlier view of.
  function endedBefore(known, info) {
    const attempts = (known.attempt || 1) - (info.attempt || 1);
    if (attempts !== 0) return attempts > 0;
    return !ACTIVE.has(known.status) && ACTIVE.has(info.status);
  }

  function rememberKinds(list) {
    const kinds = $('kinds');
    const seen = new Set([...kinds.options].map((o) => o.value));
    for (const info of list) {
      if (!seen.has(info.operation_type)) {
        seen.add(info.operation_type);
        const option = document.createElement('option');
        option.value = info.operation_type;
        kinds.append(option);
      }
    }
  }

  function liveText() {
    const n = state.streamKey ? state.streamKey.split(',').length : 0;
    return n ? `live: following ${n} active operation${n === 1 ? '' : 's'}` : 'up to date';
  }

  $('filter-status').addEventListener('change', () => {
    state.offset = 0;
    refresh();
  });
  let kindDelay = 0;
  $('filter-kind').addEventListener('input', () => {
    clearTimeout(kindDelay);
    kindDelay = setTimeout(() => {
      state.offset = 0;
      refresh();
    }, 300);
  });
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    refresh();
  });
  $('next').addEventListener('click', () => {
    state.offset += PAGE_SIZE;
    refresh();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });

  // ---- live progress: one event stream for every active operation shown ----------------

  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
    state.streamKey = '';
  }

  function follow(ids) {
    // The detail's operation is followed too, even when it is not on this page.
    const detail = state.detail && state.infos.get(state.detail.id);
    if (detail && ACTIVE.has(detail.status) && !ids.includes(detail.operation_id)) {
      ids.push(detail.operation_id);
    }
    ids.sort();
    const key = ids.join(',');
    if (key === state.streamKey && state.stream) return;
    stopStream();
    if (!ids.length) return;
    const control = new AbortController();
    state.stream = control;
    state.streamKey = key;
    say(liveText());
    readEvents('operations/events?ids=' + encodeURIComponent(key), control.signal)
      .catch(fail)
      .finally(() => {
        if (state.stream === control) {
          state.stream = null;
          state.streamKey = '';
        }
      });
  }

  // Reads a text/event-stream response with fetch (an EventSource cannot send the
  // Authorization header) and hands each event to onEvent.
  async function readEvents(path, signal) {
    const res = await fetch(new URL(path, API), {
      headers: headers({ Accept: 'text/event-stream' }),
      cache: 'no-store',
      signal,
    });
    if (res.status === 401) {
      askForToken('The token was refused.');
      return;
    }
    if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        dispatch(block);
      }
    }
  }

  function dispatch(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    let payload;
    try {
      payload = JSON.parse(data.join('\n'));
    } catch (_) {
      return;
    }
    onEvent(name, payload);
  }

  function onEvent(name, info) {
    const id = info && info.operation_id;
    if (!id) return;
    if (name === 'gone') {
      const tr = state.rows.get(id);
      if (tr) tr.dataset.status = 'GONE';
      return;
    }
    if (!info.status) return;
    // A reply that left before the end (a cancel's, say) must not undo it; events of
    // one stream come in order, so nothing else is held back.
    const known = state.infos.get(id);
    if (known && endedBefore(known, info)) return;
    state.infos.set(id, info);
    const tr = state.rows.get(id);
    if (tr) renderRow(tr, info);
    if (state.detail && state.detail.id === id) {
      renderDetail(info);
      loadMetrics();
    }
  }

  // Elapsed times of active operations move with the clock, not with events.
  setInterval(() => {
    for (const [id, tr] of state.rows) {
      const info = state.infos.get(id);
      if (info && ACTIVE.has(info.status)) tr.querySelector('.elapsed').textContent = elapsed(info);
    }
  }, 1000);

  // ---- the detail view ------------------------------------------------------------------

  function openFromHash() {
    const id = decodeURIComponent(location.hash.slice(1));
    if (/^op_[a-z0-9_]+$/.test(id)) openDetail(id);
    else closeDetail();
  }

  function closeDetail() {
    state.detail = null;
    $('detail').hidden = true;
    $('detail').removeAttribute('data-id');
    for (const tr of state.rows.values()) tr.classList.remove('selected');
  }

  async function openDetail(id) {
    state.detail = { id, metrics: [], cursor: 0, loading: false, again: false };
    const section = $('detail');
    section.dataset.id = id;
    section.hidden = false;
    $('detail-title').textContent = id;
    $('cancel-form').hidden = true;
    $('chart').replaceChildren();
    for (const [rowId, tr] of state.rows) tr.classList.toggle('selected', rowId === id);
    try {
      const body = await api('operations/' + encodeURIComponent(id));
      if (!state.detail || state.detail.id !== id) return;
      state.infos.set(id, body.data);
      renderDetail(body.data);
      loadChildren(id);
      await loadMetrics();
      if (ACTIVE.has(body.data.status)) follow(activeShownIds());
    } catch (e) {
      fail(e);
    }
  }

  function activeShownIds() {
    return [...state.rows.keys()].filter((id) => ACTIVE.has(state.infos.get(id).status));
  }

  function renderDetail(info) {
    const set = (id, text) => {
      $(id).textContent = text;
    };
    set('detail-status', info.status);
    $('detail-status').className = 's-' + info.status;
    set('detail-kind', info.operation_type);
    set('detail-description', info.description || '');
    const p = info.progress || {};
    const steps = p.steps_total ? ` (${p.steps_completed}/${p.steps_total})` : '';
    set('detail-progress', `${percent(info).toFixed(1)}%${steps}${p.current_step ? ' — ' + p.current_step : ''}`);
    set('detail-where', where(info) + (info.host_operation_id ? ` (${info.host_operation_id})` : ''));
    set('detail-created', time(info.created_at));
    set('detail-started', time(info.started_at));
    set('detail-ended', time(info.completed_at));
    const checkpoint = info.checkpoint_at ? `, checkpoint at step ${info.checkpoint_step} (${time(info.checkpoint_at)})` : '';
    set('detail-attempt', String(info.attempt || 1) + checkpoint);
    $('detail-parent').replaceChildren(info.parent_id ? opLink(info.parent_id) : '—');
    set('detail-cancel-reason', info.cancel_reason || '—');
    set('detail-error', info.error_message || '—');
    set('detail-result', info.result_summary === null || info.result_summary === undefined ? '—' : JSON.stringify(info.result_summary, null, 2));
    set('detail-metadata', JSON.stringify(info.metadata || {}, null, 2));
    const active = ACTIVE.has(info.status);
    $('cancel').hidden = !active || !$('cancel-form').hidden;
    if (!active) $('cancel-form').hidden = true;
  }

  // Lists the detail's child operations (spawn_child), each a link to its own detail.
  async function loadChildren(id) {
    const cell = $('detail-children');
    cell.replaceChildren('—');
    try {
      const body = await api(`operations/${encodeURIComponent(id)}/children?limit=100`);
      if (!state.detail || state.detail.id !== id) return;
      const children = Array.isArray(body.data) ? body.data : [];
      if (!children.length) return;
      const items = [];
      for (const child of children) {
        const item = el('span', 'child');
        item.append(opLink(child.operation_id), ` ${child.status}`);
        items.push(item, ' ');
      }
      if (body.total_count > children.length) items.push(`(${body.total_count - children.length} more)`);
      cell.replaceChildren(...items);
    } catch (e) {
      fail(e);
    }
  }

  // Reads the detail's metric records after its cursor (one request at a time; a call
  // while one runs asks for one more read after it) and redraws the chart.
  async function loadMetrics() {
    const detail = state.detail;
    if (!detail) return;
    if (detail.loading) {
      detail.again = true;
      return;
    }
    detail.loading = true;
    try {
      for (;;) {
        detail.again = false;
        const body = await api(`operations/${encodeURIComponent(detail.id)}/metrics?cursor=${detail.cursor}`);
        if (state.detail !== detail) return;
        const page = body.data || {};
        const records = Array.isArray(page.metrics) ? page.metrics : [];
        detail.metrics.push(...records);
        detail.cursor = page.cursor || detail.cursor;
        if (records.length) drawCharts(detail.metrics);
        if (!detail.again) break;
      }
    } catch (e) {
      fail(e);
    } finally {
      detail.loading = false;
    }
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  // One small line chart per numeric field of the records, by the x field (epoch,
  // step, …) when every record has one, else by record number.
  function drawCharts(records) {
    const objects = records.filter((r) => r && typeof r === 'object' && !Array.isArray(r));
    const numeric = (r, k) => typeof r[k] === 'number' && Number.isFinite(r[k]);
    const keys = [];
    for (const r of objects) {
      for (const k of Object.keys(r)) if (numeric(r, k) && !keys.includes(k)) keys.push(k);
    }
    const xKey = X_KEYS.find((k) => objects.length && objects.every((r) => numeric(r, k)));
    const chart = $('chart');
    chart.replaceChildren();
    for (const key of keys.filter((k) => k !== xKey).slice(0, 8)) {
      const points = objects
        .map((r, i) => [xKey ? r[xKey] : i + 1, r[key]])
        .filter(([, y]) => typeof y === 'number' && Number.isFinite(y));
      chart.append(lineChart(key, xKey || 'record', points));
    }
  }

  function lineChart(key, xLabel, points) {
    const W = 320;
    const H = 150;
    const pad = { l: 44, r: 10, t: 20, b: 24 };
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
    const sx = (x) => pad.l + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
    const sy = (y) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
    const root = svg('svg', { class: 'metric-chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
    root.dataset.key = key;
    const title = svg('title');
    title.textContent = `${key} by ${xLabel}`;
    const last = points.length ? points[points.length - 1][1] : NaN;
    const label = svg('text', { x: pad.l, y: 13 });
    label.textContent = `${key}: ${Number.isFinite(last) ? +last.toPrecision(4) : '—'}`;
    const axis = svg('path', { class: 'axis', d: `M${pad.l} ${pad.t} V${H - pad.b} H${W - pad.r}` });
    const top = svg('text', { x: 4, y: pad.t + 4 });
    top.textContent = String(+y1.toPrecision(3));
    const bottom = svg('text', { x: 4, y: H - pad.b });
    bottom.textContent = String(+y0.toPrecision(3));
    const xText = svg('text', { x: W - pad.r, y: H - 6, 'text-anchor': 'end' });
    xText.textContent = `${xLabel} ${x0}–${x1}`;
    root.append(title, label, axis, top, bottom, xText);
    if (points.length > 1) {
      root.append(svg('polyline', { class: 'line', points: points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' ') }));
    }
    for (const [x, y] of points) {
      const dot = svg('circle', { class: 'point', cx: sx(x), cy: sy(y), r: 2.5 });
      const tip = svg('title');
      tip.textContent = `${xLabel} ${x}: ${y}`;
      dot.append(tip);
      root.append(dot);
    }
    return root;
  }

  // ---- cancel ----------------------------------------------------------------------------

  $('cancel').addEventListener('click', () => {
    $('cancel').hidden = true;
    $('cancel-form').hidden = false;
    $('cancel-reason').focus();
  });
  $('cancel-back').addEventListener('click', () => {
    $('cancel-form').hidden = true;
    const info = state.detail && state.infos.get(state.detail.id);
    $('cancel').hidden = !info || !ACTIVE.has(info.status);
  });
  $('cancel-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const detail = state.detail;
    if (!detail) return;
    const reason = $('cancel-reason').value.trim();
    $('cancel-confirm').disabled = true;
    try {
      const body = await api(`operations/${encodeURIComponent(detail.id)}/cancel`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(reason ? { reason } : {}),
      });
      $('cancel-form').hidden = true;
      $('cancel-reason').value = '';
      say(`Cancel requested for ${detail.id}`);
      onEvent('progress', body.data);
    } catch (e) {
      fail(e);
    } finally {
      $('cancel-confirm').disabled = false;
    }
  });

  window.addEventListener('hashchange', openFromHash);
  openFromHash();
  refresh();
})();
