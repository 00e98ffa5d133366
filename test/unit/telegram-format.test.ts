// Message building for Telegram: every value escaped, every message parses as Bot API HTML and fits in
// 4,096 characters after parsing, cut between tags; a burst becomes one digest. Checked with the same
// strict parser the fake Bot API uses.
import t from 'tap';
import { ESCALATION_KINDS } from '../../src/core/escalation.js';
import type { Escalation } from '../../src/notifiers/escalation.js';
import {
  cutPlain,
  escapeHtml,
  formatDigest,
  formatEscalation,
  formatText,
  htmlToPlain,
  truncateHtml,
  visibleLength,
} from '../../src/notifiers/format.js';
import { parseTelegramHtml } from '../fixtures/fake-telegram.js';

const AT = Date.UTC(2026, 10, 28, 12, 0, 0);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function escalation(over: Partial<Escalation> = {}): Escalation {
  return {
    id: 'esc-1',
    kind: 'given_up',
    at: AT,
    host: 'docker-01',
    container: 'web-1',
    service: 'web',
    project: 'shop',
    alertname: 'ContainerUnhealthy',
    severity: 'critical',
    summary: 'web-1 is unhealthy',
    attempts: [
      { at: AT - 30_000, action: 'restart', result: 'failed', detail: 'health check still failing' },
      { at: AT - 20_000, action: 'restart', result: 'failed', detail: 'health check still failing' },
      { at: AT - 5_000, action: 'restart', result: 'timed_out', detail: 'not healthy after 120s' },
    ],
    lastHealthOutput: 'curl: (7) Failed to connect to localhost port 8080',
    externalURL: 'http://alertmanager.example:9093',
    generatorURL: 'http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1',
    detail: '3 of 3 attempts failed; last: health check still failing',
    ...over,
  };
}

/** Parses like Telegram; fails the test with the parser's complaint otherwise. */
type Checks = Pick<typeof t, 'fail' | 'ok' | 'equal' | 'notMatch'>;

function parse(t: Checks, html: string): string {
  const r = parseTelegramHtml(html);
  if (!r.ok) {
    t.fail(`not valid Bot API HTML: ${r.error}`);
    return '';
  }
  t.ok(r.plain.length <= 4096, `visible length ${r.plain.length} <= 4096`);
  t.equal(visibleLength(html), r.plain.length, 'visibleLength agrees with the parser');
  t.notMatch(r.plain, LONE_SURROGATE, 'no half of a surrogate pair');
  return r.plain;
}

t.test('escapeHtml escapes the three specials and the quote', async (t) => {
  t.equal(escapeHtml(`<b>&x "q" 'a'`), `&lt;b&gt;&amp;x &quot;q&quot; 'a'`);
  t.equal(htmlToPlain(escapeHtml(`<b>&x "q"`)), `<b>&x "q"`);
});

t.test(
  'a given-up escalation lists what is needed, each attempt, the health output and the links',
  async (t) => {
    const html = formatEscalation(escalation());
    const plain = parse(t, html);
    for (const s of [
      'Gave up healing: web-1',
      'Host: docker-01',
      'Container: web-1',
      'Service: web',
      'Project: shop',
      'Alert: ContainerUnhealthy (critical)',
      'Summary: web-1 is unhealthy',
      'Attempts (3, times UTC)',
      '1. 11:59:30 restart → failed: health check still failing',
      '3. 11:59:55 restart → timed_out: not healthy after 120s',
      'Last health-check output',
      'curl: (7) Failed to connect',
      'Alertmanager',
      'Alert source',
    ]) {
      t.ok(plain.includes(s), `shows "${s}"`);
    }
    t.match(
      html,
      'Alertmanager: <a href="http://alertmanager.example:9093/">http://alertmanager.example:9093/</a>',
    );
    t.match(
      html,
      '<a href="http://prometheus.example:9090/graph?g0.expr=up&amp;g0.tab=1">',
      '& in a URL escaped',
    );
  },
);

t.test('HTML specials in every value are escaped and shown as written', async (t) => {
  // Docker container names cannot hold <, > or &, so the specials come in through an escalation
  // object directly (the engine copies names, labels, annotations and health output verbatim).
  const nasty = '<b>&x';
  const e = escalation({
    container: nasty,
    service: `svc "${nasty}"`,
    project: '</code><i>',
    alertname: `Alert&<b>`,
    summary: `summary with <script>alert("x")</script> & &amp; &lt;`,
    description: 'a > b < c',
    detail: '&#x41; stays as typed',
    lastHealthOutput: `<html><body>Error & "fail"</body></html>`,
    attempts: [{ at: AT, action: 'restart', result: 'failed', detail: '<pre>unclosed' }],
    externalURL: 'http://am.example/"><script>',
    generatorURL: 'javascript:alert(1)',
  });
  const html = formatEscalation(e);
  const plain = parse(t, html);
  t.ok(plain.includes(`Container: ${nasty}`), 'the container name is shown as written');
  t.ok(plain.includes(`svc "${nasty}"`));
  t.ok(plain.includes('</code><i>'));
  t.ok(
    plain.includes('summary with <script>alert("x")</script> & &amp; &lt;'),
    'entities are not decoded twice',
  );
  t.ok(plain.includes('&#x41; stays as typed'));
  t.ok(plain.includes('<html><body>Error & "fail"</body></html>'));
  t.ok(plain.includes('<pre>unclosed'));
  t.notMatch(html, /href="javascript:/, 'only http(s) links become anchors');
  t.match(html, 'href="http://am.example/%22%3E%3Cscript%3E"', 'a quote cannot leave the href attribute');
  t.notOk(plain.includes('Alert source'), 'the javascript: link is left out');
});

t.test('a 10,000-character health-check output is cut to a valid message', async (t) => {
  const body = Array.from({ length: 10_000 }, (_, i) => '<&>ab'[i % 5]).join('');
  const output = `HEAD-MARK${body.slice(9, 9_991)}TAIL-MARK`;
  t.equal(output.length, 10_000);
  const html = formatEscalation(escalation({ lastHealthOutput: output }));
  const plain = parse(t, html);
  t.ok(plain.length > 3_500, `uses the room (${plain.length})`);
  t.ok(plain.includes('HEAD-MARK'), 'keeps the head of the output');
  t.ok(plain.includes('TAIL-MARK'), 'keeps the tail of the output');
  t.match(plain, /… \d+ characters cut …/, 'says how much was cut');
  t.ok(plain.includes('Alertmanager'), 'the links survive the cut');
  t.ok(plain.includes('3. 11:59:55 restart'), 'the attempts survive the cut');
  t.ok(plain.includes('id esc-1'));
});

t.test('everything huge at once still fits and parses', async (t) => {
  const big = (c: string) => `${c.repeat(9_000)}<&>`;
  const html = formatEscalation(
    escalation({
      container: big('c'),
      summary: big('s'),
      description: big('d'),
      detail: big('x'),
      alertname: big('a'),
      severity: big('v'),
      service: big('e'),
      project: big('p'),
      lastHealthOutput: big('h'),
      attempts: Array.from({ length: 120 }, (_, i) => ({
        at: AT + i,
        action: big('r'),
        result: big('f'),
        detail: big('t'),
      })),
    }),
  );
  const plain = parse(t, html);
  t.ok(plain.includes('… 110 earlier attempts not shown'));
});

t.test('truncateHtml never cuts inside a tag or an entity and closes what is open', async (t) => {
  const pieces = ['<b>', '</b>', '<code>', '</code>', '<pre>', '</pre>', '<a href="http://x/?a=1&amp;b=2">'];
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const alphabet = ['a', 'b', ' ', '\n', '<', '>', '&', '"', '😀', 'é'];
  for (let round = 0; round < 200; round++) {
    // Well-formed input built like ours: nested tags around escaped text.
    const stack: string[] = [];
    let html = '';
    for (let k = 0; k < 40; k++) {
      const r = rnd(10);
      if (r < 2 && stack.length < 3) {
        const open = pieces[[0, 2, 4, 6][rnd(4)] as number] as string;
        const name = /^<([a-z]+)/.exec(open)?.[1] as string;
        if (name === 'pre' && stack.includes('pre')) continue;
        html += open;
        stack.push(name);
      } else if (r < 4 && stack.length) {
        html += `</${stack.pop()}>`;
      } else {
        html += escapeHtml(Array.from({ length: rnd(30) }, () => alphabet[rnd(alphabet.length)]).join(''));
      }
    }
    while (stack.length) html += `</${stack.pop()}>`;
    const limit = 1 + rnd(Math.max(1, visibleLength(html)));
    const cut = truncateHtml(html, limit);
    const r = parseTelegramHtml(cut);
    if (!r.ok) {
      t.fail(`round ${round}: ${r.error}\n${cut}`);
      return;
    }
    if (r.plain.length > limit || LONE_SURROGATE.test(r.plain)) {
      t.fail(`round ${round}: ${r.plain.length} > ${limit} or a lone surrogate`);
      return;
    }
  }
  t.pass('200 random cuts parse and fit');
  t.equal(truncateHtml('<b>abc</b>', 10), '<b>abc</b>', 'short text is left alone');
  t.equal(truncateHtml('<b>abcdef</b>', 4), '<b>abc…</b>');
  t.equal(truncateHtml('a&amp;b&lt;c', 3), 'a&amp;…');
  t.equal(cutPlain('😀😀', 2), '…', 'a surrogate pair is never split');
});

t.test('a burst of 30 escalations is one digest', async (t) => {
  const list = Array.from({ length: 30 }, (_, i) =>
    escalation({ id: `e${i}`, container: `app-${i}`, at: AT + i * 1000 }),
  );
  list.push(escalation({ id: 'r', kind: 'recovered', container: 'db-1', detail: 'healthy again' }));
  const html = formatDigest(list);
  const plain = parse(t, html);
  t.match(plain, /^🚨 31 events on docker-01/);
  t.ok(plain.includes('gave up: 30 · recovered: 1'));
  for (let i = 0; i < 30; i++) t.ok(plain.includes(`app-${i} (shop/web)`), `lists app-${i}`);
  t.ok(plain.includes('✅ recovered db-1'));

  const many = Array.from({ length: 400 }, (_, i) =>
    escalation({ id: `m${i}`, container: `<&>${'n'.repeat(60)}-${i}`, detail: 'x'.repeat(500) }),
  );
  const big = parse(t, formatDigest(many));
  t.match(big, /… and \d+ more/, 'says how many were left out');
  t.ok(big.includes('gave up: 400'));
});

t.test('free text is shown exactly as written', async (t) => {
  const text = 'deploy <v2> done & "ok"';
  t.equal(parse(t, formatText(text)), text);
  const long = formatText('y'.repeat(5000));
  t.equal(parse(t, long).length, 4096);
});

t.test('every kind has a readable title', async (t) => {
  for (const kind of ESCALATION_KINDS) {
    const plain = parse(
      t,
      formatEscalation(escalation({ kind, container: kind === 'circuit_open' ? undefined : 'c' })),
    );
    t.ok(plain.length > 20, kind);
  }
  const alert = parse(
    t,
    formatEscalation(
      escalation({
        kind: 'alert',
        container: undefined,
        detail: 'reclaimed 5 bytes',
        reclaimedBytes: 5 * 1024 ** 3,
      }),
    ),
  );
  t.ok(alert.includes('Alert (critical): ContainerUnhealthy'));
  t.ok(alert.includes('What was done: reclaimed 5 bytes'));
  t.ok(alert.includes('Reclaimed: 5.0 GiB (5368709120 bytes)'));
});
