// The status page: what the healer watches, what it saw and did, and the operator's controls, all
// through the admin API with the session cookie (and the session's CSRF token on every change). Live:
// the service's event stream (GET /api/v1/events) says when the state changed and the page fetches
// what it shows again. Plain browser JavaScript, no framework, no build step; the DOM is built with
// textContent only, so nothing the service reports is ever parsed as HTML. Type-checked by
// `npm run typecheck` (src/ui/tsconfig.json: checkJs with the DOM's types).

const API = '/api/v1';
/** Fallback refresh for what changes without a write to the state (a health check passing by itself). */
const REFRESH_MS = 10_000;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const state = {
  csrf: '',
  containers: [],
  incidents: [],
  status: undefined,
  view: 'containers',
  incidentContainer: '',
  live: false,
  events: undefined,
  refreshTimer: undefined,
  pending: new Set(),
  flushTimer: undefined,
};

// ---- tiny DOM helpers --------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = String(dv);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c);
  return e;
}

const fmtTime = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
};

function fmtSeconds(s) {
  if (!s) return '—';
  if (s < 60) return `${s}s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s / 60}m`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

let toastTimer;
function toast(text) {
  const t = $('toast');
  t.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.textContent = '';
  }, 8000);
}

// ---- the admin API -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json', 'x-requested-by': 'status-page' };
  if (method !== 'GET') headers['x-csrf-token'] = state.csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const data = await res.json().catch(() => undefined);
  if (res.status === 401) {
    showLogin('Your session has ended: log in again.');
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---- login and the session ---------------------------------------------------------------------

function showLogin(message) {
  stopLive();
  state.csrf = '';
  $('app').hidden = true;
  $('facts').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  $('token').focus();
}

async function showApp(session) {
  state.csrf = session.csrfToken;
  $('login').hidden = true;
  $('app').hidden = false;
  $('facts').hidden = false;
  $('logout').hidden = false;
  startLive();
  await refreshAll();
}

async function login(ev) {
  ev.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('token'));
  const res = await fetch('/ui/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ token: input.value }),
    credentials: 'same-origin',
  });
  // The token is not kept anywhere in the page once it was sent.
  input.value = '';
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    $('login-error').textContent =
      res.status === 429 ? 'Too many failed attempts: wait a minute.' : (data.message ?? 'Login failed.');
    input.focus();
    return;
  }
  await showApp(data);
  $('main').focus();
}

async function logout() {
  await fetch('/ui/logout', { method: 'POST', headers: { 'x-csrf-token': state.csrf } }).catch(
    () => undefined,
  );
  showLogin('Logged out.');
}

// ---- live updates ------------------------------------------------------------------------------

function setLive(on) {
  state.live = on;
  const f = $('fact-live');
  f.textContent = on ? 'live' : 'reconnecting…';
  f.className = `pill ${on ? 'ok' : 'warn'}`;
}

function startLive() {
  stopLive();
  const es = new EventSource(`${API}/events`);
  state.events = es;
  es.addEventListener('open', () => {
    setLive(true);
    // Whatever changed while the stream was down.
    refreshAll();
  });
  es.addEventListener('change', (e) => {
    const change = JSON.parse(/** @type {MessageEvent} */ (e).data);
    for (const topic of change.topics) state.pending.add(topic);
    scheduleFlush();
  });
  es.addEventListener('error', async () => {
    setLive(false);
    // EventSource retries by itself; a session that ended is shown as the login form.
    if (es.readyState === EventSource.CLOSED) {
      const res = await fetch('/ui/session', { credentials: 'same-origin' }).catch(() => undefined);
      if (res?.status === 401) showLogin('Your session has ended: log in again.');
      else setTimeout(startLive, 2000);
    }
  });
  state.refreshTimer = setInterval(refreshAll, REFRESH_MS);
}

function stopLive() {
  state.events?.close();
  state.events = undefined;
  clearInterval(state.refreshTimer);
}

function scheduleFlush() {
  if (state.flushTimer) return;
  state.flushTimer = setTimeout(async () => {
    state.flushTimer = undefined;
    const topics = new Set(state.pending);
    state.pending.clear();
    const jobs = [];
    if (topics.has('containers') || topics.has('inbox') || topics.has('remediations'))
      jobs.push(loadContainers());
    if (topics.has('incidents')) jobs.push(loadIncidents());
    jobs.push(loadStatus());
    await Promise.allSettled(jobs);
  }, 30);
}

async function refreshAll() {
  await Promise.allSettled([loadContainers(), loadIncidents(), loadStatus()]);
}

// ---- status facts ------------------------------------------------------------------------------

async function loadStatus() {
  const s = await api('GET', `${API}/status`);
  state.status = s;
  const engine = $('fact-engine');
  engine.textContent = s.engine.reachable
    ? s.engine.eventsFollowed
      ? 'engine connected'
      : 'engine answers (events not followed)'
    : 'engine unreachable';
  engine.className = `pill ${s.engine.reachable ? (s.engine.eventsFollowed ? 'ok' : 'warn') : 'bad'}`;
  engine.title = s.engine.detail ?? '';
  const circuit = $('fact-circuit');
  circuit.textContent = s.circuit.open
    ? `circuit OPEN until ${fmtTime(s.circuit.openUntil)}`
    : `circuit closed (${s.circuit.recentActions}/${s.circuit.maxActions} in ${fmtSeconds(s.circuit.windowSeconds)})`;
  circuit.className = `pill ${s.circuit.open ? 'bad' : 'ok'}`;
  const outbox = $('fact-outbox');
  outbox.textContent = `outbox ${s.outbox.pending} pending, ${s.outbox.failed} failed`;
  outbox.className = `pill ${s.outbox.failed > 0 ? 'bad' : s.outbox.pending > 0 ? 'warn' : ''}`;
  const inc = $('fact-incidents');
  inc.textContent = `${s.incidentsOpen} open incident${s.incidentsOpen === 1 ? '' : 's'}`;
  inc.className = `pill ${s.incidentsOpen > 0 ? 'warn' : ''}`;
  $('fact-version').textContent = `v${s.version}${s.dryRun ? ' · DRY RUN' : ''} · scope ${s.scope}`;
}

// ---- containers --------------------------------------------------------------------------------

async function loadContainers() {
  const data = await api('GET', `${API}/containers`);
  state.containers = data.containers;
  renderContainers();
}

function matches(c) {
  const q = /** @type {HTMLInputElement} */ ($('search')).value.trim().toLowerCase();
  if (q && ![c.name, c.image, c.project, c.service, c.id].some((v) => v?.toLowerCase().includes(q)))
    return false;
  switch (/** @type {HTMLSelectElement} */ ($('filter')).value) {
    case 'sick':
      return c.health !== 'healthy' || c.state !== 'running';
    case 'healing':
      return Boolean(c.inProgress);
    case 'paused':
      return Boolean(c.pausedUntil);
    case 'given-up':
      return c.givenUp;
    case 'healthy':
      return c.health === 'healthy' && c.state === 'running';
    default:
      return true;
  }
}

function healthText(c) {
  if (c.state !== 'running') return c.state;
  return c.health === 'none' ? 'no check' : c.health;
}

function containerRow(c, previous) {
  const health = healthText(c);
  const cell = (label, ...content) => el('td', { 'data-label': label }, ...content);
  const control = (text, handler, cls = 'small quiet') =>
    el(
      'button',
      { type: 'button', class: cls, on: { click: handler }, 'aria-label': `${text} ${c.name}` },
      text,
    );
  const last = c.lastAction
    ? [
        el('span', { text: `${c.lastAction}: ${c.lastResult ?? (c.inProgress ? 'running' : '…')}` }),
        el('span', { class: 'sub', text: fmtTime(c.lastActionAt) }),
      ]
    : [el('span', { class: 'muted', text: '—' })];
  const row = el(
    'tr',
    {
      data: {
        container: c.name,
        health,
        lastResult: c.lastResult ?? '',
        attempts: c.attempts,
      },
    },
    el(
      'td',
      { class: 'name-cell' },
      el('strong', { text: c.name }),
      el('span', {
        class: 'sub',
        text: [c.project && `${c.project}/${c.service ?? ''}`, c.image].filter(Boolean).join(' · '),
      }),
      c.protected ? el('span', { class: 'sub', text: 'protected' }) : undefined,
    ),
    cell('Health', el('span', { class: `health health-${health.replace(/\s/g, '-')}`, text: health })),
    cell('State', el('span', { text: c.inProgress ? `${c.state} (${c.inProgress}…)` : c.state })),
    cell(
      'Attempts',
      el('span', { text: `${c.attempts}/${c.maxAttempts}` }),
      c.givenUp ? el('span', { class: 'sub health-unhealthy', text: 'given up' }) : undefined,
    ),
    cell('Cooldown', el('span', { text: fmtSeconds(c.cooldownRemainingSeconds) })),
    cell('Paused until', el('span', { text: c.pausedUntil ? fmtTime(c.pausedUntil) : '—' })),
    cell('Last action', ...last),
    cell(
      'Controls',
      el(
        'div',
        { class: 'controls' },
        control('Restart', () => remediate(c, 'restart')),
        control('Stop-start', () => remediate(c, 'stop_start')),
        control('Recreate', () => remediate(c, 'recreate')),
        c.pausedUntil ? control('Resume', () => resume(c)) : control('Pause', () => pause(c)),
        control('Reset', () => reset(c)),
        control('Incidents', () => showIncidentsOf(c.name)),
      ),
    ),
  );
  if (
    previous &&
    (previous.health !== c.health || previous.state !== c.state || previous.lastActionAt !== c.lastActionAt)
  )
    row.classList.add('flash');
  return row;
}

let shown = new Map();
function renderContainers() {
  const rows = $('container-rows');
  const list = state.containers.filter(matches);
  const next = new Map(state.containers.map((c) => [c.name, c]));
  // Focus stays on the control it was on when the rows are rebuilt.
  const active = document.activeElement;
  const focusKey = active?.closest?.('tr')?.dataset.container
    ? [active.closest('tr').dataset.container, active.textContent]
    : undefined;
  rows.replaceChildren(...list.map((c) => containerRow(c, shown.get(c.name))));
  shown = next;
  $('containers-empty').hidden = list.length > 0;
  if (focusKey) {
    const row = rows.querySelector(`tr[data-container="${CSS.escape(focusKey[0])}"]`);
    const again = [...(row?.querySelectorAll('button') ?? [])].find((b) => b.textContent === focusKey[1]);
    again?.focus();
  }
}

// ---- incidents ---------------------------------------------------------------------------------

async function loadIncidents() {
  const q = new URLSearchParams({ since: '7d', limit: '100' });
  if (state.incidentContainer) q.set('container', state.incidentContainer);
  const data = await api('GET', `${API}/incidents?${q}`);
  state.incidents = data.incidents;
  renderIncidents();
}

function eventText(e) {
  const parts = [];
  switch (e.type) {
    case 'signal':
      parts.push(e.source ?? 'signal', e.alertname, e.action && `asks for ${e.action}`);
      break;
    case 'decision':
      parts.push(e.reason, e.action && `(${e.action})`);
      break;
    case 'action':
      parts.push(e.action, e.result && `→ ${e.result}`);
      break;
    case 'verification':
      parts.push(e.result ?? e.reason);
      break;
    default:
      parts.push(e.reason, e.action, e.result);
  }
  if (e.detail) parts.push(`— ${e.detail}`);
  return parts.filter(Boolean).join(' ');
}

function incidentItem(i) {
  const events = [...i.events].reverse();
  return el(
    'li',
    { class: 'incident', data: { incident: i.id, container: i.container, status: i.status } },
    el(
      'h3',
      {},
      el('span', { text: i.container }),
      el('span', { class: `pill ${i.status === 'open' ? 'warn' : ''}`, text: i.status }),
      el('span', {
        class: 'muted',
        text: `opened ${fmtTime(i.openedAt)}${i.closedAt ? `, closed ${fmtTime(i.closedAt)}` : ''}`,
      }),
      i.alertname ? el('span', { class: 'muted', text: i.alertname }) : undefined,
    ),
    el(
      'ol',
      { class: 'timeline', reversed: true },
      events.map((e) =>
        el(
          'li',
          { class: `t-${e.type}`, data: { type: e.type, remediation: e.remediationId ?? '' } },
          el('time', { datetime: e.at, text: fmtTime(e.at) }),
          el('span', { class: 'kind', text: e.type }),
          el('span', { text: eventText(e) }),
        ),
      ),
    ),
  );
}

function renderIncidents() {
  $('incident-list').replaceChildren(...state.incidents.map(incidentItem));
  $('incidents-empty').hidden = state.incidents.length > 0;
  $('incident-filter').hidden = !state.incidentContainer;
  $('incident-filter-text').textContent = state.incidentContainer
    ? `container ${state.incidentContainer}`
    : '';
}

// ---- views -------------------------------------------------------------------------------------

function showView(view) {
  state.view = view;
  $('containers-view').hidden = view !== 'containers';
  $('incidents-view').hidden = view !== 'incidents';
  $('tab-containers').setAttribute('aria-pressed', String(view === 'containers'));
  $('tab-incidents').setAttribute('aria-pressed', String(view === 'incidents'));
  // '#/…': never an element's id, so the browser does not move the focus to one.
  const hash =
    view === 'incidents' && state.incidentContainer
      ? `#/incidents/${encodeURIComponent(state.incidentContainer)}`
      : `#/${view}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

function showIncidentsOf(name) {
  state.incidentContainer = name;
  showView('incidents');
  loadIncidents();
  $('incidents-title').focus?.();
}

function viewFromHash() {
  const m = /^#\/incidents(?:\/(.+))?$/.exec(location.hash);
  if (m) {
    state.incidentContainer = m[1] ? decodeURIComponent(m[1]) : '';
    showView('incidents');
  } else showView('containers');
}

// ---- controls ----------------------------------------------------------------------------------

/**
 * Asks for confirmation and a reason; resolves to {reason, duration} or undefined when cancelled.
 * @param {{ title: string, text: string, detail?: string, duration?: boolean, okText?: string, danger?: boolean }} o
 * @returns {Promise<{ reason: string, duration: string } | undefined>}
 */
function confirmDialog({ title, text, detail, duration, okText = 'Confirm', danger = false }) {
  const dialog = /** @type {HTMLDialogElement} */ ($('confirm'));
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-detail').hidden = !detail;
  $('confirm-detail').textContent = detail ?? '';
  $('duration-field').hidden = !duration;
  const reason = /** @type {HTMLTextAreaElement} */ ($('reason'));
  // Each request is asked for its own reason; the last one is not offered again.
  reason.value = '';
  /** @type {HTMLInputElement} */ ($('duration')).value = '1h';
  const ok = $('confirm-ok');
  ok.textContent = okText;
  ok.className = danger ? 'danger' : '';
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener('close', onClose);
      $('confirm-form').removeEventListener('submit', onSubmit);
      $('confirm-cancel').removeEventListener('click', onCancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      if (!reason.value.trim()) {
        reason.focus();
        return;
      }
      done({
        reason: reason.value.trim(),
        duration: /** @type {HTMLInputElement} */ ($('duration')).value.trim(),
      });
    };
    const onCancel = () => done(undefined);
    const onClose = () => done(undefined);
    dialog.addEventListener('close', onClose);
    $('confirm-form').addEventListener('submit', onSubmit);
    $('confirm-cancel').addEventListener('click', onCancel);
    dialog.showModal();
    reason.focus();
  });
}

const LABELS = { restart: 'Restart', stop_start: 'Stop and start', recreate: 'Re-create' };

/** Follows a remediation until it is done (the event stream says when to look again). */
async function follow(id) {
  for (let i = 0; i < 600; i++) {
    const r = await api('GET', `${API}/remediations/${encodeURIComponent(id)}`);
    if (r.done) return r;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return undefined;
}

function outcome(r) {
  if (!r) return 'still running; see the incidents';
  const bits = [r.state];
  if (r.skipReason) bits.push(`(${r.skipReason})`);
  if (r.verification) bits.push(`verification: ${r.verification}`);
  if (r.reclaimedBytes !== undefined) bits.push(`${(r.reclaimedBytes / 1e6).toFixed(1)} MB reclaimed`);
  if (r.detail) bits.push(`— ${r.detail}`);
  return bits.join(' ');
}

async function guarded(fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    toast(`Refused: ${err.message}`);
  }
}

async function remediate(c, action) {
  const answer = await confirmDialog({
    title: `${LABELS[action]} ${c.name}?`,
    text: 'The request goes through the policy like any other: cooldown, attempts, pause and the circuit breaker apply.',
    okText: LABELS[action],
    danger: action === 'recreate',
  });
  if (!answer) return;
  await guarded(async () => {
    const accepted = await api('POST', `${API}/remediations`, {
      target: c.name,
      action,
      reason: answer.reason,
    });
    toast(`${LABELS[action]} of ${c.name} requested`);
    const r = await follow(accepted.id);
    toast(`${LABELS[action]} of ${c.name}: ${outcome(r)}`);
  });
}

async function pause(c) {
  const answer = await confirmDialog({
    title: `Pause healing of ${c.name}?`,
    text: 'Every remediation of this container is held, forced ones too, until the time is up or you resume.',
    duration: true,
    okText: 'Pause',
  });
  if (!answer) return;
  await guarded(async () => {
    const r = await api('POST', `${API}/containers/${encodeURIComponent(c.name)}/pause`, {
      for: answer.duration,
      reason: answer.reason,
    });
    toast(`${c.name} paused until ${fmtTime(r.pausedUntil)}`);
    await loadContainers();
  });
}

async function resume(c) {
  const answer = await confirmDialog({
    title: `Resume healing of ${c.name}?`,
    text: 'The pause is lifted now.',
    okText: 'Resume',
  });
  if (!answer) return;
  await guarded(async () => {
    const r = await api('DELETE', `${API}/containers/${encodeURIComponent(c.name)}/pause`, {
      reason: answer.reason,
    });
    toast(r.pausedUntil ? `${c.name}: ${r.detail}` : `${c.name} resumed`);
    await loadContainers();
  });
}

async function reset(c) {
  const answer = await confirmDialog({
    title: `Reset ${c.name}?`,
    text: 'Clears attempts, cooldown and a given-up state, and closes the open incident.',
    okText: 'Reset',
  });
  if (!answer) return;
  await guarded(async () => {
    const r = await api('POST', `${API}/containers/${encodeURIComponent(c.name)}/reset`, {
      reason: answer.reason,
    });
    toast(`${c.name} reset: ${r.attempts} attempts`);
    await loadContainers();
  });
}

/** Clean-up: a dry run first, whose result is shown before the real one is asked for. */
async function cleanup() {
  const first = await confirmDialog({
    title: 'Clean up disk: dry run',
    text: 'First a dry run: the policy decides and logs, nothing is touched.',
    okText: 'Dry run',
  });
  if (!first) return;
  await guarded(async () => {
    const dry = await api('POST', `${API}/remediations`, {
      action: 'cleanup',
      target: 'host',
      dryRun: true,
      reason: first.reason,
    });
    const r = await follow(dry.id);
    const second = await confirmDialog({
      title: 'Clean up disk for real?',
      text: 'The dry run said:',
      detail: outcome(r),
      okText: 'Clean up',
      danger: true,
    });
    if (!second) return;
    const real = await api('POST', `${API}/remediations`, {
      action: 'cleanup',
      target: 'host',
      reason: second.reason,
    });
    toast('Clean-up requested');
    toast(`Clean-up: ${outcome(await follow(real.id))}`);
  });
}

// ---- start -------------------------------------------------------------------------------------

function wire() {
  $('login-form').addEventListener('submit', (ev) => guarded(() => login(ev)));
  $('logout').addEventListener('click', () => logout());
  $('search').addEventListener('input', renderContainers);
  $('filter').addEventListener('change', renderContainers);
  $('cleanup').addEventListener('click', () => cleanup());
  $('tab-containers').addEventListener('click', () => showView('containers'));
  $('tab-incidents').addEventListener('click', () => {
    showView('incidents');
    loadIncidents();
  });
  $('incident-filter-clear').addEventListener('click', () => {
    state.incidentContainer = '';
    showView('incidents');
    loadIncidents();
  });
  window.addEventListener('hashchange', () => {
    viewFromHash();
    if (state.view === 'incidents' && state.csrf) loadIncidents();
  });
}

async function start() {
  wire();
  viewFromHash();
  const res = await fetch('/ui/session', { credentials: 'same-origin', cache: 'no-store' }).catch(
    () => undefined,
  );
  if (res?.ok) await showApp(await res.json());
  else showLogin();
  document.body.dataset.ready = 'true';
}

start();
