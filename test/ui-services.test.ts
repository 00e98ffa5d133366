/// <reference lib="dom" />
// The status page's "Services and stacks" and "Forecasts" views in a real browser (Debian's chromium
// through playwright-core) against the real service and a real Compose project (docker-compose 1.29,
// watched by project scope). The services view shows the project's services and the project as a
// stack; a container of it that turns unhealthy and is healed shows in the stack's count without a
// reload; Scale +1 and Restart stack ask for a reason, go through POST /api/v1/remediations and show
// their result; the search narrows the rows; the controls are reached with Tab; a phone gets no
// sideways scrolling. The forecasts view says forecasts are off without PROMETHEUS_URL. It measures
// (reports, never asserts) how long the view takes to show the sick and the healed stack after the
// engine's own events.
import { existsSync } from 'node:fs';
import t from 'tap';
import { type Browser, chromium, type Page } from 'playwright-core';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import { ADMIN_TOKEN } from './fixtures/app.js';
import { upComposeProject } from './fixtures/compose-project.js';
import { breakContainer, followEngineEvents, waitFor } from './fixtures/docker.js';
import { startService } from './fixtures/service.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Generous: a busy two-core machine runs the engine, the service, the browser and other tests. */
const WAIT_MS = 90_000;

if (!existsSync(CHROMIUM)) {
  t.fail(`no browser at ${CHROMIUM}: .ci/run installs Debian's chromium package`);
  process.exit(1);
}

const p = await upComposeProject(t, 'uisvc', {
  web: { [CONTAINER_LABELS.scaleMin]: '1', [CONTAINER_LABELS.scaleMax]: '3' },
  db: {},
});
const webKey = `service:${p.project}/web`;
const svc = await startService(t, {
  WATCH_SCOPE: 'project',
  COMPOSE_PROJECT: p.project,
  WATCHDOG_INTERVAL: '30',
  RESTART_COOLDOWN: '1',
  VERIFY_TIMEOUT: '30',
  VERIFY_GRACE: '1',
});

const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
t.teardown(() => browser.close());
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page: Page = await context.newPage();
const pageErrors: string[] = [];
page.on('pageerror', (err) => pageErrors.push(String(err)));
page.on('console', (m) => {
  if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
});
const serviceRow = (key: string) => page.locator(`tr[data-service="${key}"]`);
const stackRow = () => page.locator(`tr[data-stack="${p.project}"]`);

/** Confirms the open dialog with a reason and waits for the remediation it posts; its id. */
async function confirmWith(reason: string): Promise<string> {
  await page.locator('#confirm').waitFor({ state: 'visible' });
  t.equal(await page.inputValue('#reason'), '', 'no reason offered again');
  await page.fill('#reason', reason);
  const posted = page.waitForResponse(
    (r) => r.url().endsWith('/api/v1/remediations') && r.request().method() === 'POST',
  );
  await page.click('#confirm-ok');
  const res = await posted;
  t.equal(res.status(), 202);
  return String((await res.json()).id);
}

t.test('the services view shows the Compose services and the project as a stack', async (t) => {
  await page.goto(`${svc.url}/ui#/services`);
  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#login-form button[type=submit]');
  await serviceRow(webKey).waitFor({ timeout: WAIT_MS });
  t.ok(await page.locator('#services-view').isVisible(), 'the view the URL names');
  t.equal(await page.getAttribute('#tab-services', 'aria-pressed'), 'true');
  t.equal(await serviceRow(webKey).getAttribute('data-total'), '1');
  t.match(await serviceRow(webKey).locator('td[data-label="Replicas"]').textContent(), /1\/1 healthy/);
  t.match(await serviceRow(webKey).locator('td[data-label="Replicas"]').textContent(), /scale 1–3/);
  await serviceRow(`service:${p.project}/db`).waitFor();
  await stackRow().waitFor();
  t.match(await stackRow().locator('td[data-label="Containers"]').textContent(), /2\/2 healthy/);
  t.match(await stackRow().locator('td[data-label="Services"]').textContent(), /db, web/);
  t.ok(await page.locator('#swarm-empty', { hasText: 'not a Swarm manager' }).isVisible());
  t.ok(await page.locator(`button[aria-label="Scale −1 ${webKey}"]`).isDisabled(), 'at its minimum');
});

t.test('a container of the stack turns unhealthy and is healed: the view shows it live', async (t) => {
  await page.evaluate((project) => {
    const w = window as unknown as { seen: Array<{ healthy: string; at: number }>; marker: string };
    w.marker = 'no reload';
    w.seen = [];
    const look = () => {
      const r = document.querySelector(`tr[data-stack="${CSS.escape(project)}"]`) as HTMLElement | null;
      const healthy = r?.dataset.healthy ?? '';
      if (w.seen[w.seen.length - 1]?.healthy !== healthy) w.seen.push({ healthy, at: Date.now() });
    };
    new MutationObserver(look).observe(document.getElementById('stack-rows') as HTMLElement, {
      childList: true,
      subtree: true,
      attributes: true,
    });
    look();
  }, p.project);
  const events = await followEngineEvents(t, { label: [`${CONTAINER_LABELS.composeProject}=${p.project}`] });
  await breakContainer(p.names.db as string);
  const seen = await waitFor(
    'the stack shown sick, then healthy again',
    async () => {
      const s = await page.evaluate(
        () => (window as unknown as { seen: Array<{ healthy: string; at: number }> }).seen,
      );
      const sick = s.findIndex((x) => x.healthy === '1');
      return sick >= 0 && s.slice(sick).some((x) => x.healthy === '2') ? s : undefined;
    },
    WAIT_MS,
    100,
  );
  t.pass(`the stack's healthy count went ${seen.map((x) => x.healthy).join(' → ')}`);
  t.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), 'no reload');
  const mine = events.filter((e) => e.name === p.names.db);
  const unhealthy = mine.find((e) => e.action === 'health_status: unhealthy');
  const healthy = mine.find((e) => e.action === 'health_status: healthy' && e.at > (unhealthy?.at ?? 0));
  const shownSick = seen.find((x) => x.healthy === '1');
  const shownHealed = shownSick && seen.find((x) => x.healthy === '2' && x.at > shownSick.at);
  if (unhealthy && healthy && shownSick && shownHealed)
    t.comment(
      `measured: the stack shown sick ${Math.round(shownSick.at - unhealthy.at)} ms after the engine's ` +
        `health_status: unhealthy, and healthy ${Math.round(shownHealed.at - healthy.at)} ms after its ` +
        `health_status: healthy`,
    );
  else t.comment(`not measured: the engine events seen were ${mine.map((e) => e.action).join(', ')}`);
});

t.test('Scale +1 asks for a reason, adds a replica and shows the step', async (t) => {
  await page.click(`button[aria-label="Scale +1 ${webKey}"]`);
  await page.locator('#confirm').waitFor({ state: 'visible' });
  await page.click('#confirm-ok');
  t.ok(await page.locator('#confirm').isVisible(), 'no reason, no request');
  const id = await confirmWith('more capacity for the test');
  await page.locator('#toast', { hasText: `Scale up of ${webKey}: succeeded` }).waitFor({ timeout: WAIT_MS });
  await serviceRow(webKey)
    .and(page.locator('[data-total="2"][data-healthy="2"]'))
    .waitFor({ timeout: WAIT_MS });
  t.match(
    await serviceRow(webKey).locator('td[data-label="Last action"]').textContent(),
    /scale_up: succeeded/,
  );
  t.notOk(
    await page.locator(`button[aria-label="Scale −1 ${webKey}"]`).isDisabled(),
    'above its minimum now',
  );
  const audit = svc.audit().find((l) => l.event === 'manual_request' && l.remediationId === id);
  t.match(audit, { reason: 'more capacity for the test', requestedBy: 'status-page', action: 'scale_up' });
});

t.test('Restart stack asks for a reason and shows the last restart_stack', async (t) => {
  await page.click(`button[aria-label="Restart stack project:${p.project}"]`);
  const id = await confirmWith('stack restart from the page');
  await page
    .locator('#toast', { hasText: `Restart stack of project:${p.project}: succeeded` })
    .waitFor({ timeout: WAIT_MS });
  await stackRow().and(page.locator('[data-last-restart="succeeded"]')).waitFor({ timeout: WAIT_MS });
  const audit = svc.audit().find((l) => l.event === 'manual_request' && l.remediationId === id);
  t.match(audit, { reason: 'stack restart from the page', action: 'restart_stack' });
});

t.test('the search narrows the services and the stacks', async (t) => {
  await page.fill('#svc-search', 'db');
  await serviceRow(webKey).waitFor({ state: 'detached' });
  t.equal(await serviceRow(`service:${p.project}/db`).count(), 1);
  await page.fill('#svc-search', 'no-such-thing');
  await page.locator('#compose-empty').waitFor({ state: 'visible' });
  t.ok(await page.locator('#stacks-empty').isVisible());
  await page.fill('#svc-search', '');
  await serviceRow(webKey).waitFor();
  await page.selectOption('#svc-filter', 'sick');
  await serviceRow(webKey).waitFor({ state: 'detached' });
  await page.selectOption('#svc-filter', 'all');
  await serviceRow(webKey).waitFor();
});

t.test('forecasts: off without PROMETHEUS_URL, and the page says how to turn them on', async (t) => {
  const res = await fetch(`${svc.url}/api/v1/forecasts`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  t.same(await res.json(), { enabled: false, forecasts: [] });
  await page.click('#tab-forecasts');
  await page.locator('#forecasts-off').waitFor({ state: 'visible', timeout: WAIT_MS });
  t.match(await page.locator('#forecasts-off').textContent(), /forecasts are off: set PROMETHEUS_URL/i);
  t.ok(await page.locator('#forecasts').isHidden(), 'no empty table');
  t.equal(new URL(page.url()).hash, '#/forecasts');
});

t.test(
  'keyboard: the services tab, its search and filter and the row controls are reached with Tab',
  async (t) => {
    await page.goto(`${svc.url}/ui#/services`);
    await serviceRow(webKey).waitFor({ timeout: WAIT_MS });
    const reached = new Set<string>();
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      reached.add(
        (await page.evaluate(
          () =>
            document.activeElement?.id ||
            document.activeElement?.getAttribute('aria-label') ||
            document.activeElement?.textContent,
        )) ?? '',
      );
    }
    for (const id of ['tab-services', 'tab-forecasts', 'svc-search', 'svc-filter', `Scale +1 ${webKey}`])
      t.ok(reached.has(id), `${id} is reached`);
    await page.focus(`button[aria-label="Scale +1 ${webKey}"]`);
    await page.keyboard.press('Enter');
    await page.locator('#confirm').waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await page.locator('#confirm').waitFor({ state: 'hidden' });
    t.equal(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
      `Scale +1 ${webKey}`,
      'Escape cancels and the focus is back on the control',
    );
  },
);

t.test('on a phone, dark: one card per row, no sideways scrolling', async (t) => {
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    colorScheme: 'dark',
    storageState: await context.storageState(),
  });
  t.teardown(() => phone.close());
  const ph = await phone.newPage();
  await ph.goto(`${svc.url}/ui#/services`);
  await ph.locator(`tr[data-service="${webKey}"]`).waitFor({ timeout: WAIT_MS });
  const width = await ph.evaluate(() => document.documentElement.scrollWidth);
  t.ok(width <= 390, `no sideways scrolling on a phone (${width}px)`);
  const colours = await ph.evaluate(() => {
    const s = getComputedStyle(document.body);
    return { bg: s.backgroundColor, fg: s.color };
  });
  t.not(colours.bg, colours.fg, `readable in dark (${colours.fg} on ${colours.bg})`);
  t.same(pageErrors, [], 'no script errors in the page');
});
