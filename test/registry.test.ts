// Update checks against a real registry (Debian's docker-registry on a loopback port) and the real
// engine: an image pulled through the client is up to date while the registry's tag names it, an
// update is available once v2 is pushed under the same tag, and a registry that is down leaves the
// check unknown with a reason. The check pulls nothing and touches no container.
import t from 'tap';
import { InvalidReferenceError } from '../src/docker/client.js';
import { DockerodeClient } from '../src/docker/dockerode-client.js';
import { checkUpdate } from '../src/registry/check.js';
import { DOCKER_HOST, docker, uniqueName } from './fixtures/docker.js';
import { TEST_LABEL } from './fixtures/labels.js';
import { publish, startRegistry } from './fixtures/registry.js';

const client = new DockerodeClient(DOCKER_HOST);

t.test(
  'checkUpdate: v1 pulled is up to date, v2 pushed under its tag is available, a registry down is unknown',
  async (t) => {
    const registry = await startRegistry(t);
    const ref = `${registry.host}/ah/${uniqueName('app')}:1`;
    const v1 = await publish(t, ref, { version: '1' });
    // The local tag is dropped, so what the container runs comes from the registry through pull().
    await docker.getImage(ref).remove();
    t.equal(await client.imageInfo(ref), undefined, 'no local image of that tag any more');
    const pulled = await client.pull(ref);
    t.same(pulled, { id: v1.id }, 'the pull gives the image id');
    const info = await client.imageInfo(ref);
    t.same(info?.repoDigests, [`${ref.replace(/:1$/, '')}@${v1.digest}`]);

    const c = await docker.createContainer({
      name: uniqueName('upd'),
      Image: ref,
      Cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 2147483 & wait"],
      Labels: { [TEST_LABEL]: 'true' },
      HostConfig: { NetworkMode: 'none' },
    });
    t.teardown(() => c.remove({ force: true }).catch(() => undefined));
    await c.start();
    const details = await client.inspect(c.id);
    t.equal(details?.imageId, v1.id);
    if (!details) return;

    t.match(await checkUpdate(client, details), {
      status: 'up_to_date',
      reference: ref,
      localDigest: v1.digest,
      remoteDigest: v1.digest,
    });

    const v2 = await publish(t, ref, { version: '2' });
    t.not(v2.digest, v1.digest);
    const available = await checkUpdate(client, details);
    t.match(available, { status: 'available', localDigest: v1.digest, remoteDigest: v2.digest });
    t.equal((await client.inspect(c.id))?.imageId, v1.id, 'the check changed nothing: the container runs v1');

    await registry.stop();
    const down = await checkUpdate(client, details, { remote: { timeoutMs: 3000 } });
    t.match(down, {
      status: 'unknown',
      localDigest: v1.digest,
      detail: /could not be asked for .*: ECONNREFUSED/,
    });
    t.notOk(down.remoteDigest);
  },
);

t.test(
  'pull and imageInfo: a missing tag is a failure that says so, a bad reference never reaches the engine',
  async (t) => {
    const registry = await startRegistry(t);
    const missing = `${registry.host}/ah/${uniqueName('none')}:1`;
    const r = await client.pull(missing);
    t.match(r, { failed: true, detail: /could not pull .*manifest unknown|not found/ });
    t.equal(await client.imageInfo(missing), undefined);
    await t.rejects(client.pull('a/../../containers/json'), InvalidReferenceError);
    await t.rejects(client.imageInfo('x y'), InvalidReferenceError);
    await registry.stop();
    const down = await client.pull(missing);
    t.match(down, { failed: true, detail: /could not pull/ });
  },
);
