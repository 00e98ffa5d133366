// The design's layering, checked on the source itself: core/ imports no module outside core/ (decisions
// stay pure and Docker-free); nothing imports the entry point; only the HTTP app registers the route
// plugins, so no module reaches up into routes/ for a type or a helper.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import t from 'tap';

const ROOT = resolve(import.meta.dirname, '../..');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
const importsOf = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)].map((m) =>
    m[1]?.startsWith('.') ? relative(ROOT, resolve(file, '..', m[1])) : (m[1] ?? ''),
  );

t.test('core/ imports no module of the service outside core/ (packages are fine)', async (t) => {
  const bad = files(join(ROOT, 'src/core')).flatMap((f) =>
    importsOf(f)
      .filter((i) => /^(src|routes|test|bench)\//.test(i) && !i.startsWith('src/core/'))
      .map((i) => `${relative(ROOT, f)} imports ${i}`),
  );
  t.same(bad, []);
});

t.test('nothing imports the entry point, and only the HTTP app imports routes/', async (t) => {
  const bad = [...files(join(ROOT, 'src')), ...files(join(ROOT, 'routes'))].flatMap((f) =>
    importsOf(f)
      .filter(
        (i) =>
          i === 'src/server.js' ||
          (i.startsWith('routes/') &&
            !relative(ROOT, f).startsWith('routes/') &&
            relative(ROOT, f) !== 'src/http/app.ts'),
      )
      .map((i) => `${relative(ROOT, f)} imports ${i}`),
  );
  t.same(bad, []);
});
