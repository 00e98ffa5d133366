// Docker's name and id grammar (core/names.ts) and the resolution of a target against one listing
// (core/targets.ts, docker/client.ts lookupContainer), table-driven and without an engine: names match
// names exactly, ids only as the full id or a unique prefix of 12 or more hex characters, a prefix that
// matches several is ambiguous, and a malformed name never reaches the engine.
import t from 'tap';
import {
  checkComposeProject,
  checkComposeService,
  parseContainerRef,
  quoteInput,
} from '../../src/core/names.js';
import { checkSelector, parseTarget, resolveTarget, targetFromLabels } from '../../src/core/targets.js';
import type { ContainerView } from '../../src/core/types.js';
import {
  type ContainerDetails,
  type ContainerSummary,
  lookupContainer,
  lookupTargets,
} from '../../src/docker/client.js';
import { resolveSelfContainerId } from '../../src/self.js';

const hex64 = (head: string) => `${head}${'0'.repeat(64 - head.length)}`;

t.test('parseContainerRef accepts what Docker names and ids are', async (t) => {
  const cases: Array<[string, 'name' | 'id' | 'id_prefix', string]> = [
    ['web', 'name', 'web'],
    ['/web', 'name', 'web'],
    ['ab', 'name', 'ab'],
    ['shop-web-1', 'name', 'shop-web-1'],
    ['shop_web.1', 'name', 'shop_web.1'],
    ['1web', 'name', '1web'],
    ['Web', 'name', 'Web'],
    // Short hex is a name: the engine would read `df` as an id prefix, this service never does.
    ['df', 'name', 'df'],
    ['df4b0c9e1a2', 'name', 'df4b0c9e1a2'],
    ['df4b0c9e1a2f', 'id_prefix', 'df4b0c9e1a2f'],
    ['DF4B0C9E1A2F', 'name', 'DF4B0C9E1A2F'],
    [hex64('df4b'), 'id', hex64('df4b')],
    [`/${hex64('ab')}`, 'id', hex64('ab')],
  ];
  for (const [text, kind, value] of cases) {
    t.same(parseContainerRef(text), { ok: true, kind, value }, JSON.stringify(text));
  }
});

t.test('parseContainerRef refuses everything else, saying why', async (t) => {
  const refused = [
    '',
    'a',
    '/',
    '..',
    '.',
    '../x',
    '../127.0.0.1:2375/x',
    '%2e%2e',
    'a/b',
    'web/',
    '//web',
    '-web',
    '_web',
    '.web',
    'a b',
    ' web',
    'web ',
    'a\u0000b',
    'a\nb',
    '名前',
    'a;rm -rf /',
    'web?x=1',
    'web#x',
    'a\u{1F600}',
    '\uD800web',
    'x'.repeat(257),
  ];
  for (const text of refused) {
    const r = parseContainerRef(text);
    t.equal(r.ok, false, `${JSON.stringify(text).slice(0, 40)} is refused`);
    if (r.ok) continue;
    t.equal(r.reason, 'invalid_name');
    t.ok(r.detail.length < 400, 'the message stays short');
    t.notOk(
      r.detail.includes('\u0000') || r.detail.includes('\n'),
      'the message carries no control character',
    );
  }
  const r = parseContainerRef('../x');
  t.match(r, {
    ok: false,
    detail: /^"\.\.\/x" is not a container name or id: Docker names are two or more letters, digits/,
  });
  t.match(parseContainerRef('x'.repeat(300)), { ok: false, detail: /longer than 256 characters/ });
  t.equal(quoteInput('x'.repeat(100)).length, 64 + 3, 'a long text is quoted cut short');
  t.equal(quoteInput('a\u0000b'), '"a\\u0000b"', 'a control character is escaped');
});

t.test('Compose service and project names follow compose-spec', async (t) => {
  for (const s of ['web', 'web-1', 'web_1', 'web.api', 'WEB']) t.ok(checkComposeService(s).ok, s);
  for (const s of ['', 'a b', 'web;x', '../x', 'a/b', '名前']) t.notOk(checkComposeService(s).ok, s);
  for (const s of ['shop', 'shop-1', 'shop_1', '_shop', '-shop']) t.ok(checkComposeProject(s).ok, s);
  for (const s of ['', 'Shop', 'shop.1', 'a b', '../x']) t.notOk(checkComposeProject(s).ok, s);
  t.match(checkSelector(parseTarget('service:shop/web;reboot')), { ok: false, reason: 'invalid_target' });
  t.match(checkSelector(parseTarget('service:Shop/web')), { ok: false, reason: 'invalid_target' });
  t.same(checkSelector(parseTarget('service:shop/web')), { ok: true });
  t.match(checkSelector(targetFromLabels({ container: '../x' })), { ok: false, reason: 'invalid_target' });
  t.same(checkSelector(targetFromLabels({ container: '/web' })), { ok: true });
});

const view = (name: string, id: string, labels: Record<string, string> = {}): ContainerView => ({
  id,
  name,
  labels,
  state: 'running',
  health: 'healthy',
});

const listing: ContainerView[] = [
  view('web', hex64('df4b0c9e1a2f77')),
  view('api', hex64('df4b0c9e1a2f88')),
  view('db', hex64('0123456789ab')),
  // A name that is another container's id prefix: Docker's order says the name wins.
  view('0123456789ab', hex64('99aa')),
  view('shop-web-1', hex64('77'), {
    'com.docker.compose.service': 'web',
    'com.docker.compose.project': 'shop',
  }),
  view('shop-web-run', hex64('78'), {
    'com.docker.compose.service': 'web',
    'com.docker.compose.project': 'shop',
    'com.docker.compose.oneoff': 'True',
  }),
];
const names = (r: ReturnType<typeof resolveTarget>) => (r.ok ? r.containers.map((c) => c.name) : r.reason);

t.test('resolveTarget: names match names, ids only as a full id or a unique 12+ hex prefix', async (t) => {
  const cases: Array<[string, string[] | string]> = [
    ['web', ['web']],
    ['/web', ['web']],
    ['we', 'target_not_found'],
    ['Web', 'target_not_found'],
    ['webx', 'target_not_found'],
    // The defect: `df` restarted the container whose id begins df4b….
    ['df', 'target_not_found'],
    ['df4b', 'target_not_found'],
    ['df4b0c9e1a2', 'target_not_found'],
    ['df4b0c9e1a2f', 'target_ambiguous'],
    ['df4b0c9e1a2f7', ['web']],
    ['df4b0c9e1a2f8', ['api']],
    [hex64('df4b0c9e1a2f77'), ['web']],
    [hex64('df4b0c9e1a2f99'), 'target_not_found'],
    ['0123456789ab', ['0123456789ab']],
    ['0123456789ab0', ['db']],
    ['../x', 'invalid_target'],
    ['a b', 'invalid_target'],
    ['名前', 'invalid_target'],
  ];
  for (const [text, want] of cases) {
    t.same(names(resolveTarget({ kind: 'container', name: text }, listing)), want, JSON.stringify(text));
  }
  t.match(resolveTarget({ kind: 'container', name: 'df' }, listing), {
    ok: false,
    detail: 'no container named "df" (an id needs at least 12 hex characters)',
  });
  t.match(resolveTarget({ kind: 'container', name: 'df4b0c9e1a2f' }, listing), {
    ok: false,
    reason: 'target_ambiguous',
    candidates: ['api', 'web'],
    detail:
      /the id prefix "df4b0c9e1a2f" matches 2 containers \(api, web\): give more of the id, or the name/,
  });
});

t.test('resolveTarget: a Compose service is every container of it, one-off runs aside', async (t) => {
  t.same(names(resolveTarget(parseTarget('service:shop/web'), listing)), ['shop-web-1']);
  t.same(names(resolveTarget(parseTarget('service:web'), listing)), ['shop-web-1']);
  t.same(names(resolveTarget(parseTarget('service:other/web'), listing)), 'target_not_found');
  t.same(names(resolveTarget(parseTarget('service:shop/we b'), listing)), 'invalid_target');
  t.same(names(resolveTarget({ kind: 'none' }, listing)), 'target_not_found');
});

/** A DockerClient part that records every call, over a fixed listing. */
function countingDocker(list: ContainerView[]) {
  const calls: string[] = [];
  const summary = (c: ContainerView): ContainerSummary => ({ ...c, image: 'img', status: 'Up', created: 0 });
  return {
    calls,
    async listContainers(opts?: { all?: boolean; labels?: ReadonlyArray<string> }) {
      calls.push(`list all=${opts?.all} labels=${opts?.labels?.join(',') ?? ''}`);
      return list.map(summary);
    },
    async inspect(id: string): Promise<ContainerDetails | undefined> {
      calls.push(`inspect ${id}`);
      const c = list.find((x) => x.id === id);
      return c
        ? {
            ...summary(c),
            running: true,
            exitCode: 0,
            oomKilled: false,
            restartPolicy: 'no',
            hasHealthCheck: false,
          }
        : undefined;
    },
  };
}

t.test('lookupContainer: one listing, then an inspect by the full id; nothing for a bad name', async (t) => {
  const d = countingDocker(listing);
  t.match(await lookupContainer(d, 'web'), { ok: true, containers: [{ name: 'web', running: true }] });
  t.same(d.calls, ['list all=true labels=', `inspect ${hex64('df4b0c9e1a2f77')}`], 'inspected by full id');

  d.calls.length = 0;
  t.match(await lookupContainer(d, 'df'), { ok: false, reason: 'target_not_found' });
  t.same(d.calls, ['list all=true labels='], 'a miss inspects nothing');

  d.calls.length = 0;
  t.match(await lookupContainer(d, 'df4b0c9e1a2f'), { ok: false, reason: 'target_ambiguous' });
  t.same(d.calls, ['list all=true labels='], 'an ambiguous prefix inspects nothing');

  for (const bad of ['../x', '..', '../127.0.0.1:2375/x', 'a b', 'a\u0000b', '名前', 'a;rm -rf /']) {
    d.calls.length = 0;
    t.match(await lookupContainer(d, bad), { ok: false, reason: 'invalid_target' }, JSON.stringify(bad));
    t.same(d.calls, [], `${JSON.stringify(bad)}: no engine call at all`);
  }

  // Removed between the listing and the inspect.
  const gone = countingDocker(listing);
  gone.inspect = async () => undefined;
  t.match(await lookupContainer(gone, 'web'), { ok: false, reason: 'target_not_found' });
});

t.test('lookupTargets: a service is listed by its label; a malformed one is not listed', async (t) => {
  const d = countingDocker(listing);
  t.match(await lookupTargets(d, parseTarget('service:shop/web')), {
    ok: true,
    containers: [{ name: 'shop-web-1' }],
  });
  t.same(d.calls, ['list all=true labels=com.docker.compose.service=web']);
  d.calls.length = 0;
  t.match(await lookupTargets(d, parseTarget('service:shop/web,x=y')), {
    ok: false,
    reason: 'invalid_target',
  });
  t.same(d.calls, []);
});

t.test('SELF_CONTAINER_ID is matched against a listing like any target', async (t) => {
  const d = countingDocker(listing);
  t.equal(await resolveSelfContainerId(d, 'web'), hex64('df4b0c9e1a2f77'), 'a name');
  t.equal(await resolveSelfContainerId(d, '/web'), hex64('df4b0c9e1a2f77'), 'a name with its slash');
  t.equal(await resolveSelfContainerId(d, 'df4b0c9e1a2f7'), hex64('df4b0c9e1a2f77'), 'a unique prefix');
  t.equal(await resolveSelfContainerId(d, 'df'), undefined, 'a short hex text is a name, and none has it');
  t.equal(await resolveSelfContainerId(d, 'df4b0c9e1a2f'), undefined, 'an ambiguous prefix names none');
  t.notOk(
    d.calls.some((c) => c.startsWith('inspect')),
    'never inspect(text): the engine would read `df` as an id prefix',
  );
  d.calls.length = 0;
  t.equal(await resolveSelfContainerId(d, '../x'), undefined);
  t.same(d.calls, [], 'a malformed one is not even listed');
  t.equal(await resolveSelfContainerId(d, hex64('ab')), hex64('ab'), 'a full id is taken as it is');
});

t.test('a Compose project is every container of it; a Swarm service names no container', async (t) => {
  t.same(names(resolveTarget(parseTarget('project:shop'), listing)), ['shop-web-1'], 'one-off runs aside');
  t.same(names(resolveTarget(parseTarget('project:other'), listing)), 'target_not_found');
  t.same(names(resolveTarget(parseTarget('project:Shop'), listing)), 'invalid_target');
  t.match(resolveTarget(parseTarget('swarm:web'), listing), {
    ok: false,
    reason: 'target_not_found',
    detail: /Swarm service/,
  });

  const d = countingDocker(listing);
  t.match(await lookupTargets(d, parseTarget('project:shop')), {
    ok: true,
    containers: [{ name: 'shop-web-1' }],
  });
  t.same(d.calls, ['list all=true labels=com.docker.compose.project=shop'], 'one listing, by its label');
  d.calls.length = 0;
  t.match(await lookupTargets(d, parseTarget('project:shop,x=y')), { ok: false, reason: 'invalid_target' });
  t.match(await lookupTargets(d, parseTarget('swarm:web/../x')), { ok: false, reason: 'invalid_target' });
  t.match(await lookupTargets(d, parseTarget('swarm:web')), { ok: false, reason: 'target_not_found' });
  t.same(d.calls, [], 'nothing malformed, and no Swarm service, is looked up in the container listing');
});
