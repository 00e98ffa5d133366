// What the benchmarks share: the webhook token of the service they build, a Docker stub that knows no
// containers (every alert runs the decision path in full and is decided `target_not_found`; remediation
// I/O is not what the webhook and state-growth benchmarks measure), the body Alertmanager posts for a
// group of firing alerts, a median, and a wait on a condition the engine's event stream fills in.
import { setTimeout as sleep } from 'node:timers/promises';
import { CONTAINER_LABELS } from '../src/core/labels.js';
import type { DockerClient, DockerEvent } from '../src/docker/client.js';
import { DockerodeClient } from '../src/docker/dockerode-client.js';

export const BENCH_TOKEN = 'bench-token-0123456789abcdef';

export const stubDocker: DockerClient = {
  ping: async () => undefined,
  listContainers: async () => [],
  inspect: async () => undefined,
  restart: async () => 'gone',
  stop: async () => 'gone',
  start: async () => 'gone',
  kill: async () => 'gone',
  remove: async () => ({ removed: false, reclaimedBytes: 0 }),
  definition: async () => undefined,
  create: async () => ({ refused: 'no_such_image', detail: 'the benchmark stub creates nothing' }),
  rename: async () => 'gone',
  imageInfo: async () => undefined,
  removeImage: async () => 'gone',
  swarmRole: async () => 'none',
  listServices: async () => [],
  listTasks: async () => [],
  forceUpdate: async () => 'gone',
  rollbackService: async () => 'gone',
  scaleService: async () => 'gone',
  pull: async () => ({ failed: true, detail: 'the benchmark stub pulls nothing' }),
  prune: async (kind) => ({ kind, deleted: [], reclaimedBytes: 0 }),
  events: async function* () {},
  swarmChanges: async function* () {},
};

/** What differs between the benchmarks' alert groups. */
export interface AlertGroup {
  /** How many alerts the group holds. */
  readonly size: number;
  /** The container label of the group's i-th alert. */
  readonly container: (i: number) => string;
  readonly annotations: (container: string) => Record<string, string>;
  readonly startsAt: string;
}

/**
 * Alertmanager's webhook body for group number `seq` of ContainerUnhealthy alerts, as the shipped rules
 * fire them; each alert's fingerprint is made of seq and its index, so no two groups share an alert.
 */
export function alertGroupPayload(seq: number, group: AlertGroup) {
  return {
    version: '4',
    receiver: 'autoheal',
    status: 'firing',
    groupKey: '{}/{remediation=~".+"}:{alertname="ContainerUnhealthy"}',
    groupLabels: { alertname: 'ContainerUnhealthy' },
    commonLabels: { alertname: 'ContainerUnhealthy', severity: 'warning', remediation: 'restart' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    truncatedAlerts: 0,
    alerts: Array.from({ length: group.size }, (_, i) => {
      const container = group.container(i);
      return {
        status: 'firing',
        labels: {
          alertname: 'ContainerUnhealthy',
          container,
          service: 'web',
          project: 'shop',
          instance: 'autoheal:9095',
          job: 'autoheal',
          severity: 'warning',
          remediation: 'restart',
        },
        annotations: group.annotations(container),
        startsAt: group.startsAt,
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph?g0.expr=autoheal_container_healthy+%3D%3D+0',
        fingerprint: `${seq.toString(16).padStart(8, '0')}${i.toString(16).padStart(8, '0')}`,
      };
    }),
  };
}

/** The median of the figures (the mean of the middle two for an even count). */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Polls `fn` every `pollMs` until it gives a value; throws naming `what` after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  fn: () => T | undefined,
  timeoutMs = 60_000,
  pollMs = 20,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * The engine's own timeline of a Compose project's containers (by name), from an event stream of its
 * own; stop() ends it.
 */
export function observeProject(dockerHost: string, project: string) {
  const timeline = new Map<string, DockerEvent[]>();
  const abort = new AbortController();
  const done = (async () => {
    try {
      for await (const ev of new DockerodeClient(dockerHost).events({ signal: abort.signal })) {
        if (ev.labels[CONTAINER_LABELS.composeProject] !== project) continue;
        const list = timeline.get(ev.name) ?? [];
        list.push(ev);
        timeline.set(ev.name, list);
      }
    } catch {
      // aborted at the end
    }
  })();
  const stop = async () => {
    abort.abort();
    await Promise.race([done, sleep(1000)]);
  };
  return { timeline, stop };
}
