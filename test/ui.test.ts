/// <reference lib="dom" />
// The status page in a real browser (Debian's chromium, driven by playwright-core; nothing is
// downloaded) against the real service on a loopback port and the real Docker engine. The service
// watches only this test's own Compose project. The page is refused without a session, logs in once,
// shows a container turn unhealthy and get healed without a reload, restarts one on request and shows
// its incident, keeps the token out of the page, the URL and the cookies, and refuses a change without
// the CSRF header. It measures (reports, never asserts) how long the page takes to show a heal after
// the engine's own event, and saves the screenshots the README shows.
import { existsSync, mkdirSync } from 'node:fs';
import t from 'tap';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import { ADMIN_TOKEN } from './fixtures/app.js';
import {
  breakContainer,
  createTestContainer,
  ensureTestImage,
  followEngineEvents,
  uniqueName,
  waitFor,
  waitForHealth,
} from './fixtures/docker.js';
import { startService } from './fixtures/service.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DOCS = new URL('../docs/', import.meta.url).pathname;
/** Generous: a busy two-core machine runs the engine, the service, the browser and other tests. */
const WAIT_MS = 60_000;

if (!existsSync(CHROMIUM)) {
  t.fail(`no browser at ${CHROMIUM}: .ci/run installs Debian's chromium package`);
  process.exit(1);
}

await ensureTestImage();
const project = uniqueName('ui');
const svc = await startService(t, {
  WATCH_SCOPE: 'project',
  COMPOSE_PROJECT: project,
  WATCHDOG_INTERVAL: '30',
  RESTART_COOLDOWN: '1',
  VERIFY_TIMEOUT: '30',
  VERIFY_GRACE: '1',
});
const inProject = (service: string) => ({
  [CONTAINER_LABELS.composeProject]: project,
  [CONTAINER_LABELS.composeService]: service,
});
const [web, worker, db] = await Promise.all(
  ['web', 'worker', 'db'].map((s) =>
    createTestContainer(t, { name: uniqueName(`ui-${s}`), labels: inProject(s) }),
  ),
);
if (!web || !worker || !db) throw new Error('test containers not created');
await Promise.all([web, worker, db].map((c) => waitForHealth(c.name, 'healthy', WAIT_MS)));

const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
t.teardown(() => browser.close());
const context: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page: Page = await context.newPage();
const pageErrors: string[] = [];
page.on('pageerror', (err) => pageErrors.push(String(err)));
page.on('console', (m) => {
  // A refused request (the 401s and 403s this test asks for) is logged by the browser itself.
  if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
});

const row = (name: string) => page.locator(`tr[data-container="${name}"]`);

t.test('without a session the API refuses and the page asks for the token', async (t) => {
  for (const path of ['/api/v1/containers', '/api/v1/status', '/api/v1/events', '/ui/session']) {
    t.equal((await fetch(`${svc.url}${path}`)).status, 401, `${path}: 401`);
  }
  const res = await page.goto(`${svc.url}/`);
  t.equal(new URL(page.url()).pathname, '/ui', '/ goes to /ui');
  const csp = res?.headers()['content-security-policy'] ?? '';
  t.match(csp, /default-src 'self'/, 'a strict Content-Security-Policy');
  t.notMatch(csp, /unsafe-inline/, 'no inline script or style allowed');
  t.match(csp, /frame-ancestors 'none'/);
  t.equal(res?.headers()['x-content-type-options'], 'nosniff');
  await page.locator('#login').waitFor({ state: 'visible' });
  t.ok(await page.locator('#app').isHidden(), 'nothing of the healer is shown');
  const html = await (await fetch(`${svc.url}/ui`)).text();
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in the page source');
  t.notMatch(html, /<style|style="/, 'no inline style');
});

t.test('a wrong token is refused and logged without the token', async (t) => {
  await page.fill('#token', 'not-the-admin-token-at-all');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error', { hasText: 'wrong token' }).waitFor({ timeout: WAIT_MS });
  t.ok(await page.locator('#app').isHidden());
  const failed = await waitFor(
    'the failed login in the audit log',
    async () => svc.audit().find((l) => l.event === 'login_failed'),
    WAIT_MS,
  );
  t.notMatch(JSON.stringify(failed), /not-the-admin-token/, 'the token tried is not logged');
});

t.test('logging in once shows the watched containers; the token is nowhere in the page', async (t) => {
  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#login-form button[type=submit]');
  await row(web.name).waitFor({ timeout: WAIT_MS });
  await row(worker.name).waitFor({ timeout: WAIT_MS });
  await page.locator('#fact-live', { hasText: 'live' }).waitFor({ timeout: WAIT_MS });
  t.equal(await row(web.name).getAttribute('data-health'), 'healthy');
  // The header's facts come from the status call, which may answer after the rows: wait for them.
  await page.locator('#fact-engine', { hasText: 'engine connected' }).waitFor({ timeout: WAIT_MS });
  await page.locator('#fact-version', { hasText: /^v\d+\.\d+\.\d+/ }).waitFor({ timeout: WAIT_MS });
  t.match(await page.locator('#fact-engine').textContent(), /engine connected/);
  t.match(await page.locator('#fact-version').textContent(), /^v\d+\.\d+\.\d+/);

  const source = await (await fetch(page.url())).text();
  const dom = await page.evaluate(() => document.documentElement.outerHTML);
  const inputs = await page.evaluate(() =>
    [...document.querySelectorAll('input, textarea')].map((e) => (e as HTMLInputElement).value).join('\n'),
  );
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  for (const [what, text] of [
    ['page source', source],
    ['DOM', dom],
    ['form fields', inputs],
    ['web storage', storage],
    ['URL', page.url()],
  ] as const) {
    t.notOk(text.includes(ADMIN_TOKEN), `no token in the ${what}`);
  }
  const cookies = await context.cookies();
  t.equal(cookies.length, 1, 'one cookie');
  const [cookie] = cookies;
  t.equal(cookie?.name, 'autoheal_session');
  t.ok(cookie?.httpOnly, 'HttpOnly');
  t.equal(cookie?.sameSite, 'Strict', 'SameSite=Strict');
  t.equal(cookie?.path, '/');
  t.notOk(cookie?.value.includes(ADMIN_TOKEN), 'the cookie is not the token');
  t.ok((cookie?.value.length ?? 0) >= 40, 'a long random id');
  t.notOk(await page.evaluate(() => document.cookie), 'scripts cannot read the session cookie');
});

t.test('with the session cookie, a change without the CSRF header is refused', async (t) => {
  const [cookie] = await context.cookies();
  const jar = `${cookie?.name}=${cookie?.value}`;
  const reset = (headers: Record<string, string>) =>
    fetch(`${svc.url}/api/v1/containers/${web.name}/reset`, {
      method: 'POST',
      headers: { cookie: jar, 'content-type': 'application/json', ...headers },
      body: '{}',
    });
  t.equal((await reset({})).status, 403, 'no CSRF header: 403');
  t.equal((await reset({ 'x-csrf-token': 'forged' })).status, 403, 'a wrong one: 403');
  const body = (await (await reset({})).json()) as { error: string };
  t.equal(body.error, 'csrf_failed');
  t.equal(
    (await fetch(`${svc.url}/api/v1/containers`, { headers: { cookie: jar } })).status,
    200,
    'reads: the cookie alone',
  );
  // The page's own script, without the header: refused the same way.
  const inPage = await page.evaluate(
    async (name) =>
      (
        await fetch(`/api/v1/containers/${name}/pause`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ for: '1h' }),
        })
      ).status,
    web.name,
  );
  t.equal(inPage, 403, 'from the page too');
  t.equal(
    (
      await fetch(`${svc.url}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
        body: JSON.stringify({ token: ADMIN_TOKEN }),
      })
    ).status,
    403,
    'a login posted from another origin',
  );
});

t.test('a container that turns unhealthy is healed, and the page shows it live', async (t) => {
  // Every health value the row shows, with the page's clock: the rows are rebuilt on each update.
  await page.evaluate((name) => {
    const w = window as unknown as {
      seen: Array<{ health: string; result: string; at: number }>;
      marker: string;
    };
    w.marker = 'no reload';
    w.seen = [];
    const look = () => {
      const r = document.querySelector(`tr[data-container="${CSS.escape(name)}"]`) as HTMLElement | null;
      const health = r?.dataset.health ?? '';
      const result = r?.dataset.lastResult ?? '';
      const last = w.seen[w.seen.length - 1];
      if (last?.health !== health || last?.result !== result) w.seen.push({ health, result, at: Date.now() });
    };
    new MutationObserver(look).observe(document.getElementById('container-rows') as HTMLElement, {
      childList: true,
      subtree: true,
      attributes: true,
    });
    look();
  }, web.name);
  const events = await followEngineEvents(t, { label: [`${CONTAINER_LABELS.composeProject}=${project}`] });
  await breakContainer(web.name);

  const seen = await waitFor(
    'the page to show the heal',
    async () => {
      const s = await page.evaluate(
        () => (window as unknown as { seen: Array<{ health: string; result: string; at: number }> }).seen,
      );
      const sick = s.findIndex((x) => x.health !== 'healthy');
      const healed =
        sick >= 0 && s.slice(sick).find((x) => x.health === 'healthy' && x.result === 'succeeded');
      return healed ? s : undefined;
    },
    WAIT_MS,
    100,
  );
  t.ok(
    seen.some((x) => x.health !== 'healthy'),
    `the page showed it sick: ${seen.map((x) => x.health).join(' → ')}`,
  );
  t.equal(
    await page.evaluate(() => (window as unknown as { marker?: string }).marker),
    'no reload',
    'without a reload',
  );

  const mine = events.filter((e) => e.name === web.name);
  const unhealthy = mine.find((e) => e.action === 'health_status: unhealthy');
  const healthy = mine.find((e) => e.action === 'health_status: healthy' && e.at > (unhealthy?.at ?? 0));
  const shownSick = seen.find((x) => x.health !== 'healthy');
  const shownHealed = seen.find((x) => x.health === 'healthy' && x.result === 'succeeded');
  if (unhealthy && healthy && shownSick && shownHealed) {
    t.comment(
      `measured: the page showed the container sick ${Math.round(shownSick.at - unhealthy.at)} ms after the ` +
        `engine's health_status: unhealthy, and healed ${Math.round(shownHealed.at - healthy.at)} ms after the ` +
        `engine's health_status: healthy (the heal took the engine ${Math.round(healthy.at - unhealthy.at)} ms)`,
    );
  } else {
    t.comment(`not measured: the engine events seen were ${mine.map((e) => e.action).join(', ')}`);
  }

  await page.click(`tr[data-container="${web.name}"] button:text("Incidents")`);
  const incident = page.locator(`li.incident[data-container="${web.name}"]`).first();
  await incident.waitFor({ timeout: WAIT_MS });
  t.ok(await incident.locator('li[data-type="signal"]').count(), 'the incident shows the signal');
  t.ok(await incident.locator('li[data-type="decision"]').count(), 'the decision');
  t.ok(await incident.locator('li[data-type="action"]').count(), 'the action');
  await incident.locator('li[data-type="verification"]').first().waitFor({ timeout: WAIT_MS });
  t.equal(new URL(page.url()).hash, `#/incidents/${web.name}`, 'the incidents of that container');
  await page.screenshot({ path: `${DOCS}status-page-incidents.png`, animations: 'disabled' });
});

t.test('restart asks for confirmation and a reason; its incident appears', async (t) => {
  await page.click('#tab-containers');
  await row(worker.name).waitFor({ timeout: WAIT_MS });
  await page.click(`button[aria-label="Restart ${worker.name}"]`);
  const dialog = page.locator('#confirm');
  await dialog.waitFor({ state: 'visible' });
  await page.click('#confirm-ok');
  t.ok(await dialog.isVisible(), 'no reason, no request');
  await page.fill('#reason', 'checking the status page');
  const posted = page.waitForResponse(
    (r) => r.url().endsWith('/api/v1/remediations') && r.request().method() === 'POST',
  );
  await page.click('#confirm-ok');
  const accepted = await (await posted).json();
  t.equal(accepted.action, 'restart');
  await page
    .locator('#toast', { hasText: `Restart of ${worker.name}: succeeded` })
    .waitFor({ timeout: WAIT_MS });
  await page.click(`tr[data-container="${worker.name}"] button:text("Incidents")`);
  const action = page.locator(
    `li.incident[data-container="${worker.name}"] li[data-type="action"][data-remediation="${accepted.id}"]`,
  );
  await action.waitFor({ timeout: WAIT_MS });
  t.match(await action.textContent(), /restart/);
  const audit = svc.audit().find((l) => l.event === 'manual_request' && l.remediationId === accepted.id);
  t.equal(audit?.reason, 'checking the status page', 'the reason is in the audit log');
  t.equal(audit?.requestedBy, 'status-page');
});

t.test('pause for a duration and resume, each confirmed with a reason', async (t) => {
  await page.click('#tab-containers');
  await page.click(`button[aria-label="Pause ${worker.name}"]`);
  t.equal(await page.inputValue('#reason'), '', 'the last reason is not offered again');
  await page.fill('#duration', '2h');
  await page.fill('#reason', 'maintenance window');
  await page.click('#confirm-ok');
  await row(worker.name).locator('button', { hasText: 'Resume' }).waitFor({ timeout: WAIT_MS });
  t.not(await row(worker.name).locator('td[data-label="Paused until"]').textContent(), '—');
  await page.click(`button[aria-label="Resume ${worker.name}"]`);
  await page.fill('#reason', 'done');
  await page.click('#confirm-ok');
  await row(worker.name).locator('button', { hasText: 'Pause' }).waitFor({ timeout: WAIT_MS });
  const resumed = svc.audit().find((l) => l.event === 'resume' && l.container === worker.name);
  t.equal(resumed?.reason, 'done');
});

t.test('clean-up runs as a dry run first and shows what it would do', async (t) => {
  await page.click('#cleanup');
  await page.fill('#reason', 'disk check');
  await page.click('#confirm-ok');
  await page.locator('#confirm-title', { hasText: 'for real' }).waitFor({ timeout: WAIT_MS });
  t.match(await page.locator('#confirm-detail').textContent(), /dry_run/, 'the dry run result is shown');
  await page.click('#confirm-cancel');
  t.notOk(
    svc.audit().some((l) => l.event === 'manual_request' && l.action === 'cleanup' && l.dryRun === false),
    'nothing cleaned without a second confirmation',
  );
});

t.test('screenshots at desktop and phone width, light and dark', async (t) => {
  mkdirSync(DOCS, { recursive: true });
  // One container held by an operator while it is sick, so the pictures show every kind of row.
  const paused = await fetch(`${svc.url}/api/v1/containers/${db.name}/pause`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ for: '1h', reason: 'schema migration' }),
  });
  t.equal(paused.status, 200);
  await breakContainer(db.name);
  await page.click('#tab-containers');
  await row(db.name).and(page.locator('[data-health="unhealthy"]')).waitFor({ timeout: WAIT_MS });
  await page.evaluate(() => {
    (document.getElementById('toast') as HTMLElement).textContent = '';
  });
  await page.screenshot({ path: `${DOCS}status-page.png`, animations: 'disabled' });
  // The same project as services and a stack.
  await page.click('#tab-services');
  await page.locator(`tr[data-stack="${project}"]`).waitFor({ timeout: WAIT_MS });
  await page.screenshot({ path: `${DOCS}status-page-services.png`, animations: 'disabled' });
  await page.click('#tab-containers');
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    colorScheme: 'dark',
    storageState: await context.storageState(),
  });
  t.teardown(() => phone.close());
  const p = await phone.newPage();
  await p.goto(`${svc.url}/ui`);
  await p.locator(`tr[data-container="${web.name}"]`).waitFor({ timeout: WAIT_MS });
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  t.ok(width <= 390, `no sideways scrolling on a phone (${width}px)`);
  await p.screenshot({ path: `${DOCS}status-page-phone.png`, animations: 'disabled' });
  t.pass(
    'saved docs/status-page.png, docs/status-page-services.png, docs/status-page-phone.png, docs/status-page-incidents.png',
  );
});

t.test('keyboard: the tabs, the filters and the controls are reachable with Tab', async (t) => {
  // From the top of a freshly opened page.
  await page.goto(`${svc.url}/ui`);
  await row(web.name).waitFor({ timeout: WAIT_MS });
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.textContent);
  t.equal(first, 'Skip to content', 'a skip link first');
  const reached = new Set<string>();
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    reached.add(
      (await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent)) ?? '',
    );
  }
  for (const id of [
    'logout',
    'tab-containers',
    'tab-services',
    'tab-forecasts',
    'tab-incidents',
    'search',
    'filter',
    'cleanup',
  ]) {
    t.ok(reached.has(id), `${id} is reached`);
  }
});

t.test('logging out ends the session', async (t) => {
  const [cookie] = await context.cookies();
  await page.click('#logout');
  await page.locator('#login').waitFor({ state: 'visible', timeout: WAIT_MS });
  const res = await fetch(`${svc.url}/api/v1/containers`, {
    headers: { cookie: `${cookie?.name}=${cookie?.value}` },
  });
  t.equal(res.status, 401, 'the old cookie is refused');
  t.same(pageErrors, [], 'no script errors in the page');
});
