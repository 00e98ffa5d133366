// Watches whether the Docker engine answers: logs each change once (not every failed ping) and keeps
// autoheal_docker_connected current. The service keeps running while the engine is away.
import type { Logger } from 'pino';
import type { DockerClient } from '../docker/client.js';
import type { Metrics } from '../metrics.js';

export class EngineMonitor {
  private timer: NodeJS.Timeout | undefined;
  private connected: boolean | undefined;
  private readonly listeners = new Set<(connected: boolean) => void>();

  constructor(
    private readonly docker: DockerClient,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly dockerHost: string,
    private readonly intervalMs = 5000,
  ) {}

  get isConnected(): boolean {
    return this.connected === true;
  }

  onChange(fn: (connected: boolean) => void): void {
    this.listeners.add(fn);
  }

  start(): void {
    const tick = async () => {
      await this.check();
      if (this.timer !== undefined) this.timer = setTimeout(tick, this.intervalMs).unref();
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  async check(): Promise<boolean> {
    let ok = false;
    let reason = '';
    try {
      await this.docker.ping();
      ok = true;
    } catch (err) {
      reason = (err as Error).message;
    }
    this.set(ok, reason);
    return ok;
  }

  /** Other parts (the event stream) report what they see too. */
  set(ok: boolean, reason = ''): void {
    if (ok === this.connected) return;
    this.connected = ok;
    this.metrics.dockerConnected.set(ok ? 1 : 0);
    if (ok)
      this.log.info({ event: 'docker_connected', dockerHost: this.dockerHost }, 'docker engine reachable');
    else {
      this.log.error(
        { event: 'docker_unreachable', dockerHost: this.dockerHost, reason },
        `docker engine unreachable at ${this.dockerHost}: ${reason}; will keep trying`,
      );
    }
    for (const fn of this.listeners) fn(ok);
  }
}
