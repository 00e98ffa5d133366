// The CLI's client of the admin API (routes/admin/): one method per route it uses, with the request
// and response types taken from the route schemas (type imports only: the CLI loads no schema code),
// and every failure turned into a CliError that says what to fix.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Static } from 'typebox';
import type {
  Accepted,
  ContainerList,
  IncidentList,
  NotifyAccepted,
  NotifyRequest,
  PauseRequest,
  PauseState,
  Remediation,
  RemediationRequest,
  ResetState,
  ControlRequest,
  UpdateList,
  ForecastList,
  ServiceList,
  UpdateRun,
  UpdateRunRequest,
} from '../http/admin-schemas.js';
import { CliError, type Io } from './io.js';
import type { Values } from './options.js';

export type AcceptedView = Static<typeof Accepted>;
export type RemediationView = Static<typeof Remediation>;
export type ContainerView = Static<typeof ContainerList>['containers'][number];
export type IncidentView = Static<typeof IncidentList>['incidents'][number];
export type PauseView = Static<typeof PauseState>;
export type ResetView = Static<typeof ResetState>;
export type NotifyView = Static<typeof NotifyAccepted>;
export type UpdateListView = Static<typeof UpdateList>;
export type ForecastListView = Static<typeof ForecastList>;
export type ServiceListView = Static<typeof ServiceList>;
export type UpdateRunView = Static<typeof UpdateRun>;

export class AdminClient {
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly requester: string,
  ) {}

  remediate(body: Static<typeof RemediationRequest>): Promise<AcceptedView> {
    return this.call('POST', '/api/v1/remediations', body);
  }

  /** One remediation, by the `url` its acceptance returned. */
  remediation(url: string): Promise<RemediationView> {
    return this.call('GET', url);
  }

  containers(all: boolean): Promise<Static<typeof ContainerList>> {
    return this.call('GET', `/api/v1/containers${all ? '?all=true' : ''}`);
  }

  incidents(query: URLSearchParams): Promise<Static<typeof IncidentList>> {
    return this.call('GET', `/api/v1/incidents?${query}`);
  }

  pause(container: string, body: Static<typeof PauseRequest>): Promise<PauseView> {
    return this.call('POST', `/api/v1/containers/${encodeURIComponent(container)}/pause`, body);
  }

  resume(container: string): Promise<PauseView> {
    return this.call('DELETE', `/api/v1/containers/${encodeURIComponent(container)}/pause`);
  }

  reset(container: string, body: Static<typeof ControlRequest>): Promise<ResetView> {
    return this.call('POST', `/api/v1/containers/${encodeURIComponent(container)}/reset`, body);
  }

  notify(body: Static<typeof NotifyRequest>): Promise<NotifyView> {
    return this.call('POST', '/api/v1/notify', body);
  }

  services(): Promise<ServiceListView> {
    return this.call('GET', '/api/v1/services');
  }

  forecasts(): Promise<ForecastListView> {
    return this.call('GET', '/api/v1/forecasts');
  }

  updates(): Promise<UpdateListView> {
    return this.call('GET', '/api/v1/updates');
  }

  runUpdates(body: Static<typeof UpdateRunRequest>): Promise<UpdateRunView> {
    return this.call('POST', '/api/v1/updates', body);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          'x-requested-by': this.requester,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(
        `cannot reach autoheal-nexus at ${this.base}: ${why} (is it running? set AUTOHEAL_URL or --url)`,
      );
    }
    const text = await res.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (res.status === 401) {
      throw new CliError(`the service refused the token (HTTP 401): check ADMIN_TOKEN`);
    }
    if (!res.ok) {
      const message =
        (data as { message?: string } | undefined)?.message ?? (text.slice(0, 200) || res.statusText);
      throw new CliError(`${message} (HTTP ${res.status})`);
    }
    return data as T;
  }
}

/** The client the options and environment ask for; a usage error (exit 2) when they do not add up. */
export function createAdminClient(v: Values, env: Io['env']): AdminClient {
  return new AdminClient(baseUrl(v, env), readToken(env), v['requested-by'] ?? defaultRequester());
}

function readToken(env: Io['env']): string {
  if (env.ADMIN_TOKEN) return env.ADMIN_TOKEN;
  if (env.ADMIN_TOKEN_FILE) {
    try {
      return readFileSync(env.ADMIN_TOKEN_FILE, 'utf8').trim();
    } catch (err) {
      throw new CliError(
        `ADMIN_TOKEN_FILE: cannot read ${env.ADMIN_TOKEN_FILE}: ${(err as NodeJS.ErrnoException).code}`,
        2,
      );
    }
  }
  throw new CliError('ADMIN_TOKEN is not set: export the token the service was started with', 2);
}

/**
 * The service's URL when neither --url nor AUTOHEAL_URL says it: where a service started with this
 * same environment listens (PORT, HOST; a wildcard HOST is reached on loopback), else the default.
 */
export function defaultUrl(env: Io['env']): string {
  const port = env.PORT && /^[0-9]{1,5}$/.test(env.PORT) ? env.PORT : '9095';
  const raw = env.HOST?.trim() || '127.0.0.1';
  const host = raw === '0.0.0.0' || raw === '::' || raw === '[::]' ? '127.0.0.1' : raw;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

function baseUrl(v: Values, env: Io['env']): string {
  const text = v.url ?? (env.AUTOHEAL_URL || defaultUrl(env));
  try {
    const u = new URL(text);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new CliError(`not an http(s) URL: "${text}" (--url or AUTOHEAL_URL)`, 2);
  }
  return text.replace(/\/+$/, '');
}

function defaultRequester(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}
