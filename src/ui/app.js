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
  /** GET /api/v1/services: Compose services, stacks, Swarm services. */
  services: undefined,
  /** GET /api/v1/forecasts. */
  forecasts: undefined,
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
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** @type {ReadonlyArray<[string, number]>} */
const BYTE_UNITS = [
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];

function fmtBytes(n) {
  const abs = Math.abs(n);
  for (const [unit, size] of BYTE_UNITS) if (abs >= size) return `${(n / size).toFixed(1)} ${unit}`;
  return `${Math.round(n)} B`;
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
      jobs.push(loadContainers(), loadServices());
    // The scale ledger and the forecasts' holds are kept there.
    if (topics.has('misc')) jobs.push(loadServices(), loadForecasts());
    if (topics.has('incidents')) jobs.push(loadIncidents());
    jobs.push(loadStatus());
    await Promise.allSettled(jobs);
  }, 30);
}

async function refreshAll() {
  await Promise.allSettled([
    loadContainers(),
    loadServices(),
    loadForecasts(),
    loadIncidents(),
    loadStatus(),
  ]);
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

// ---- rows shared by the tables -------------------------------------------------------------------

const cell = (label, ...content) => el('td', { 'data-label': label }, ...content);

/** A row's first cell: its name in bold, what it is below. */
const nameCell = (name, sub, ...more) =>
  el(
    'td',
    { class: 'name-cell' },
    el('strong', { text: name }),
    el('span', { class: 'sub', text: sub }),
    ...more,
  );

/** A control button for a target; its label names the target, so it is unique on the page. */
const controlFor =
  (target) =>
  (text, handler, o = {}) =>
    el(
      'button',
      {
        type: 'button',
        class: 'small quiet',
        on: { click: handler },
        'aria-label': `${text} ${target}`,
        disabled: o.disabled,
        title: o.title,
      },
      text,
    );

/** Attempts, cooldown, pause and last action: a container's or a service's record, the same cells. */
function standingCells(x) {
  const last = x.lastAction
    ? [
        el('span', { text: `${x.lastAction}: ${x.lastResult ?? (x.inProgress ? 'running' : '…')}` }),
        el('span', { class: 'sub', text: fmtTime(x.lastActionAt) }),
      ]
    : [el('span', { class: 'muted', text: '—' })];
  return [
    cell(
      'Attempts',
      el('span', { text: `${x.attempts}/${x.maxAttempts}` }),
      x.givenUp ? el('span', { class: 'sub health-unhealthy', text: 'given up' }) : undefined,
    ),
    cell('Cooldown', el('span', { text: fmtSeconds(x.cooldownRemainingSeconds) })),
    cell('Paused until', el('span', { text: x.pausedUntil ? fmtTime(x.pausedUntil) : '—' })),
    cell('Last action', ...last),
  ];
}

/** Filters that read a record's standing, shared by the containers' and the services' menus. */
function standingMatches(x, filter, healthy) {
  switch (filter) {
    case 'sick':
      return !healthy;
    case 'healing':
      return Boolean(x.inProgress);
    case 'paused':
      return Boolean(x.pausedUntil);
    case 'given-up':
      return x.givenUp;
    case 'healthy':
      return healthy;
    default:
      return true;
  }
}

const searched = (input, values) => {
  const q = /** @type {HTMLInputElement} */ ($(input)).value.trim().toLowerCase();
  return !q || values.some((v) => v?.toLowerCase().includes(q));
};
const chosen = (select) => /** @type {HTMLSelectElement} */ ($(select)).value;

/** Replaces a table's rows; the focus stays on the control it was on (its label names its target). */
function rebuild(tbody, rows) {
  const active = document.activeElement;
  const label = tbody.contains(active) ? active.getAttribute('aria-label') : undefined;
  tbody.replaceChildren(...rows);
  if (label)
    /** @type {HTMLElement | null} */ (
      tbody.querySelector(`button[aria-label="${CSS.escape(label)}"]`)
    )?.focus();
}

/** A row that changed since the last rendering flashes once. */
function flashIf(row, previous, next, keys) {
  if (previous && keys.some((k) => JSON.stringify(previous[k]) !== JSON.stringify(next[k])))
    row.classList.add('flash');
  return row;
}

// ---- containers --------------------------------------------------------------------------------

async function loadContainers() {
  const data = await api('GET', `${API}/containers`);
  state.containers = data.containers;
  renderContainers();
}

function matches(c) {
  if (!searched('search', [c.name, c.image, c.project, c.service, c.id])) return false;
  return standingMatches(c, chosen('filter'), c.health === 'healthy' && c.state === 'running');
}

function healthText(c) {
  if (c.state !== 'running') return c.state;
  return c.health === 'none' ? 'no check' : c.health;
}

function containerRow(c, previous) {
  const health = healthText(c);
  const control = controlFor(c.name);
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
    ...standingCells(c),
    cell(
      'Controls',
      el(
        'div',
        { class: 'controls' },
        control('Restart', () => remediate(c.name, 'restart')),
        control('Stop-start', () => remediate(c.name, 'stop_start')),
        control('Recreate', () => remediate(c.name, 'recreate')),
        c.pausedUntil ? control('Resume', () => resume(c)) : control('Pause', () => pause(c)),
        control('Reset', () => reset(c)),
        control('Incidents', () => showIncidentsOf(c.name)),
      ),
    ),
  );
  return flashIf(row, previous, c, ['health', 'state', 'lastActionAt']);
}

let shown = new Map();
function renderContainers() {
  const list = state.containers.filter(matches);
  const next = new Map(state.containers.map((c) => [c.name, c]));
  rebuild(
    $('container-rows'),
    list.map((c) => containerRow(c, shown.get(c.name))),
  );
  shown = next;
  $('containers-empty').hidden = list.length > 0;
}

// ---- services and stacks -----------------------------------------------------------------------

async function loadServices() {
  try {
    state.services = await api('GET', `${API}/services`);
    $('services-error').hidden = true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    // The engine did not answer: say so, and keep what was shown last.
    $('services-error').hidden = false;
    $('services-error').textContent = `Cannot list the services: ${err.message}`;
  }
  renderServices();
}

const countsText = (n) =>
  `${n.healthy}/${n.total} healthy${n.running < n.total ? `, ${n.running} running` : ''}`;
const allHealthy = (n) => n.total > 0 && n.healthy === n.total;
const countsSpan = (n) =>
  el('span', {
    class: `health ${allHealthy(n) ? 'health-healthy' : 'health-unhealthy'}`,
    text: countsText(n),
  });

/** Scale +1 and −1 of a Compose or Swarm service, greyed out at a labelled limit. */
function scaleControls(key, replicas, scale, control) {
  const atMax = scale && replicas >= scale.max;
  const atMin = scale && replicas <= scale.min;
  return [
    control('Scale +1', () => remediate(key, 'scale_up'), {
      disabled: atMax,
      title: atMax ? `at its maximum (${scale.maxFrom})` : undefined,
    }),
    control('Scale −1', () => remediate(key, 'scale_down'), {
      disabled: atMin,
      title: atMin ? `at its minimum (${scale.minFrom})` : undefined,
    }),
  ];
}

function serviceRow(s, previous) {
  const control = controlFor(s.key);
  const row = el(
    'tr',
    { data: { service: s.key, healthy: s.replicas.healthy, total: s.replicas.total } },
    nameCell(s.service, `${s.project} · ${s.key}`),
    cell(
      'Replicas',
      countsSpan(s.replicas),
      el('span', {
        class: 'sub',
        text: s.scale ? `scale ${s.scale.min}–${s.scale.max}` : 'no scale label',
      }),
    ),
    ...standingCells(s),
    cell(
      'Controls',
      el(
        'div',
        { class: 'controls' },
        ...scaleControls(s.key, s.replicas.total, s.scale, control),
        control('Incidents', () => showIncidentsOf(s.key)),
      ),
    ),
  );
  return flashIf(row, previous, s, ['replicas', 'lastActionAt', 'inProgress']);
}

function stackRow(p, previous) {
  const control = controlFor(`project:${p.project}`);
  const last = p.lastRestart
    ? [
        el('span', { text: p.lastRestart.state }),
        el('span', { class: 'sub', text: fmtTime(p.lastRestart.at) }),
      ]
    : [el('span', { class: 'muted', text: '—' })];
  const row = el(
    'tr',
    { data: { stack: p.project, healthy: p.containers.healthy, lastRestart: p.lastRestart?.state ?? '' } },
    el('td', { class: 'name-cell' }, el('strong', { text: p.project })),
    cell('Containers', countsSpan(p.containers)),
    cell('Services', el('span', { text: p.services.join(', ') })),
    cell('Last restart_stack', ...last),
    cell(
      'Controls',
      el(
        'div',
        { class: 'controls' },
        control('Restart stack', () => remediate(`project:${p.project}`, 'restart_stack')),
        control('Incidents', () => showIncidentsOf(`project:${p.project}`)),
      ),
    ),
  );
  return flashIf(row, previous, p, ['containers', 'lastRestart']);
}

function swarmRow(s, previous) {
  const control = controlFor(s.key);
  const desired = s.replicas.desired ?? s.replicas.wanted;
  const row = el(
    'tr',
    { data: { swarm: s.name, health: s.health } },
    nameCell(s.name, `${s.mode} · ${s.image}`),
    cell(
      'Replicas',
      el('span', { text: `${s.replicas.running}/${desired} running` }),
      s.updateState ? el('span', { class: 'sub', text: `update ${s.updateState}` }) : undefined,
    ),
    cell('Health', el('span', { class: `health health-${s.health}`, text: s.health })),
    ...standingCells(s),
    cell(
      'Controls',
      el(
        'div',
        { class: 'controls' },
        ...(s.mode === 'replicated' ? scaleControls(s.key, desired, undefined, control) : []),
        control('Incidents', () => showIncidentsOf(s.key)),
      ),
    ),
  );
  return flashIf(row, previous, s, ['replicas', 'health', 'lastActionAt']);
}

let shownServices = new Map();
function renderServices() {
  const data = state.services;
  if (!data) return;
  const filter = chosen('svc-filter');
  const services = data.services.filter(
    (s) =>
      searched('svc-search', [s.key, s.project, s.service, ...s.containers]) &&
      standingMatches(s, filter, allHealthy(s.replicas)),
  );
  const stacks = data.stacks.filter(
    (p) =>
      searched('svc-search', [p.project, ...p.services]) &&
      standingMatches({ inProgress: p.lastRestart?.state === 'running' }, filter, allHealthy(p.containers)),
  );
  const swarm = data.swarm.services.filter(
    (s) =>
      searched('svc-search', [s.key, s.name, s.image]) && standingMatches(s, filter, s.health === 'healthy'),
  );
  const before = shownServices;
  rebuild(
    $('service-rows'),
    services.map((s) => serviceRow(s, before.get(s.key))),
  );
  rebuild(
    $('stack-rows'),
    stacks.map((p) => stackRow(p, before.get(`project:${p.project}`))),
  );
  rebuild(
    $('swarm-rows'),
    swarm.map((s) => swarmRow(s, before.get(s.key))),
  );
  shownServices = new Map([
    ...data.services.map((s) => [s.key, s]),
    ...data.stacks.map((p) => [`project:${p.project}`, p]),
    ...data.swarm.services.map((s) => [s.key, s]),
  ]);
  $('compose-empty').hidden = services.length > 0;
  $('stacks-empty').hidden = stacks.length > 0;
  $('swarm-services').hidden = !data.swarm.manager;
  $('swarm-empty').hidden = data.swarm.manager && swarm.length > 0;
  $('swarm-empty').textContent = data.swarm.manager
    ? 'No Swarm service matches.'
    : 'This engine is not a Swarm manager.';
}

// ---- forecasts ---------------------------------------------------------------------------------

async function loadForecasts() {
  state.forecasts = await api('GET', `${API}/forecasts`);
  renderForecasts();
}

const PLAN_WORDS = { maintenance_window: 'in the maintenance window', asap: 'as soon as possible' };

/** A slope as a person reads it: per hour, in bytes for memory and disk, in starts for restarts. */
function slopeText(f) {
  if (f.slopePerSecond === undefined) return '—';
  const h = f.slopePerSecond * 3600;
  const sign = h >= 0 ? '+' : '−';
  return f.kind === 'restarts'
    ? `${sign}${Math.abs(h).toFixed(1)} starts/h`
    : `${sign}${fmtBytes(Math.abs(h))}/h`;
}

function forecastRow(f) {
  const planned = f.plannedAt
    ? [
        el('span', { text: `${f.action ?? 'action'} ${fmtTime(f.plannedAt)}` }),
        el('span', { class: 'sub', text: PLAN_WORDS[f.plannedReason] ?? f.plannedReason ?? '' }),
      ]
    : [el('span', { class: 'muted', text: f.action ? `${f.action} if it holds` : '—' })];
  const holds = [
    f.heldUntil ? el('span', { text: `held until ${fmtTime(f.heldUntil)}` }) : undefined,
    f.lastAction
      ? el('span', {
          class: 'sub',
          text: `last ${fmtTime(f.lastAction.at)}${f.lastAction.helped === undefined ? '' : f.lastAction.helped ? ', helped' : ', did not help'}`,
        })
      : undefined,
  ].filter(Boolean);
  return el(
    'tr',
    { data: { forecast: `${f.kind}:${f.target}`, reason: f.reason } },
    nameCell(f.target, f.detail),
    cell('Kind', el('span', { text: f.kind })),
    cell(
      'Until failure',
      el('span', {
        class: f.reason === 'ok' ? 'health health-unhealthy' : '',
        text: f.secondsUntilFailure === undefined ? '—' : fmtSeconds(f.secondsUntilFailure),
      }),
      el('span', { class: 'sub', text: f.reason === 'ok' ? `${f.agreedRuns} runs agree` : f.reason }),
    ),
    cell('Slope', el('span', { text: slopeText(f) })),
    cell('R²', el('span', { text: f.r2 === undefined ? '—' : f.r2.toFixed(3) })),
    cell('Points', el('span', { text: f.points === undefined ? '—' : String(f.points) })),
    cell('Window', el('span', { text: fmtSeconds(f.windowSeconds ? Math.round(f.windowSeconds) : 0) })),
    cell('Planned action', ...planned),
    cell('Holds', ...(holds.length ? holds : [el('span', { class: 'muted', text: '—' })])),
  );
}

function renderForecasts() {
  const data = state.forecasts;
  if (!data) return;
  const filter = chosen('fc-filter');
  const list = data.forecasts.filter(
    (f) =>
      searched('fc-search', [f.target, f.kind, f.action]) &&
      (filter === 'all' ||
        f.kind === filter ||
        (filter === 'sound' && f.reason === 'ok') ||
        (filter === 'planned' && Boolean(f.plannedAt))),
  );
  rebuild(
    $('forecast-rows'),
    list.map((f) => forecastRow(f)),
  );
  $('forecasts-off').hidden = data.enabled;
  $('forecasts').hidden = !data.enabled;
  $('forecasts-empty').hidden = !data.enabled || list.length > 0;
  $('forecasts-empty').textContent = data.forecasts.length
    ? 'No forecast matches.'
    : 'No forecast yet: the first run has not finished.';
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

const VIEWS = ['containers', 'services', 'forecasts', 'incidents'];

function showView(view) {
  state.view = view;
  for (const v of VIEWS) {
    $(`${v}-view`).hidden = view !== v;
    $(`tab-${v}`).setAttribute('aria-pressed', String(view === v));
  }
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
  } else {
    const named = /^#\/(\w+)$/.exec(location.hash)?.[1];
    showView(VIEWS.includes(named) ? named : 'containers');
  }
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
  // The control that opened it gets the focus back, even if its row was rebuilt meanwhile.
  const opener = document.activeElement;
  const openerLabel = opener?.getAttribute('aria-label');
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener('close', onClose);
      $('confirm-form').removeEventListener('submit', onSubmit);
      $('confirm-cancel').removeEventListener('click', onCancel);
      if (dialog.open) dialog.close();
      const back = opener?.isConnected
        ? opener
        : openerLabel && document.querySelector(`button[aria-label="${CSS.escape(openerLabel)}"]`);
      /** @type {HTMLElement | null} */ (back || null)?.focus();
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

const LABELS = {
  restart: 'Restart',
  stop_start: 'Stop and start',
  recreate: 'Re-create',
  scale_up: 'Scale up',
  scale_down: 'Scale down',
  restart_stack: 'Restart stack',
};

/** What a request does, beyond the policy's part, said in its confirmation. */
const WHAT = {
  scale_up: "One replica is added (never past the service's maximum: autoheal.scale.max or SCALE_MAX).",
  scale_down: 'One replica is removed, the highest-numbered first (never below its minimum).',
  restart_stack:
    'Every container of the project is restarted in dependency order, each once the ones it depends on are healthy again.',
};

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

/** An action on a target (a container's name, service:PROJECT/NAME, project:NAME, swarm:NAME). */
async function remediate(target, action) {
  const policy =
    'The request goes through the policy like any other: cooldown, attempts, pause and the circuit breaker apply.';
  const answer = await confirmDialog({
    title: `${LABELS[action]} ${target}?`,
    text: WHAT[action] ? `${WHAT[action]} ${policy}` : policy,
    okText: LABELS[action],
    danger: action === 'recreate' || action === 'restart_stack',
  });
  if (!answer) return;
  await guarded(async () => {
    const accepted = await api('POST', `${API}/remediations`, {
      target,
      action,
      reason: answer.reason,
    });
    toast(`${LABELS[action]} of ${target} requested`);
    const r = await follow(accepted.id);
    toast(`${LABELS[action]} of ${target}: ${outcome(r)}`);
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
  $('svc-search').addEventListener('input', renderServices);
  $('svc-filter').addEventListener('change', renderServices);
  $('fc-search').addEventListener('input', renderForecasts);
  $('fc-filter').addEventListener('change', renderForecasts);
  $('tab-services').addEventListener('click', () => showView('services'));
  $('tab-forecasts').addEventListener('click', () => showView('forecasts'));
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
