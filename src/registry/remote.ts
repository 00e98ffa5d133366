// The digest a registry serves now for a tag, asked the way the engine asks: a HEAD of
// /v2/<repository>/manifests/<tag> accepting every manifest type a tag can name (schema 2, a manifest
// list, an OCI manifest or index), the digest read from Docker-Content-Digest. A registry that answers
// 401 with a Bearer challenge is asked for a token at the realm it names (with the credentials, when
// there are any) and asked again; a Basic challenge gets the credentials. Nothing here throws: a
// registry that is down, slow or refusing is an error value that says so.
import { createHash } from 'node:crypto';
import { Agent, type Dispatcher, request } from 'undici';
import type { Credentials } from './auth.js';
import { apiHost, type ImageReference, referenceText, registryScheme } from './reference.js';

export const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
] as const;

export type RemoteDigest =
  | { readonly ok: true; readonly digest: string }
  | { readonly ok: false; readonly detail: string };

export interface RemoteOptions {
  /** The whole exchange (challenge, token, manifest) ends within this (default 15 s). */
  readonly timeoutMs?: number;
  /** Tests inject their own; by default one Agent with connect and header timeouts. */
  readonly dispatcher?: Dispatcher;
}

let defaultAgent: Agent | undefined;
const agent = () =>
  (defaultAgent ??= new Agent({ connectTimeout: 5_000, headersTimeout: 10_000, bodyTimeout: 10_000 }));

const header = (h: Record<string, string | string[] | undefined>, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The parameters of a `Bearer realm="…",service="…",scope="…"` challenge. */
export function parseChallenge(value: string): { scheme: string; params: Record<string, string> } {
  const space = value.indexOf(' ');
  const scheme = (space < 0 ? value : value.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of value.slice(space + 1).matchAll(/([A-Za-z_]+)="([^"]*)"/g)) {
    if (m[1] && m[2] !== undefined) params[m[1].toLowerCase()] = m[2];
  }
  return { scheme, params };
}

/** Why a request failed, in words, without a URL's query or any header (a token could be in them). */
const failure = (err: unknown): string => {
  const e = err as { code?: string; name?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'no answer in time';
  return e?.code ?? e?.message ?? String(err);
};

async function bearerToken(
  params: Record<string, string>,
  ref: ImageReference,
  credentials: Credentials | undefined,
  o: { dispatcher: Dispatcher; signal: AbortSignal },
): Promise<{ token: string } | { detail: string }> {
  const realm = params.realm;
  if (!realm || !/^https?:\/\//.test(realm)) return { detail: 'its Bearer challenge names no realm' };
  const url = new URL(realm);
  if (params.service) url.searchParams.set('service', params.service);
  url.searchParams.set('scope', params.scope ?? `repository:${ref.repository}:pull`);
  const res = await request(url, {
    method: 'GET',
    headers: credentials ? { authorization: credentials.basic() } : {},
    dispatcher: o.dispatcher,
    signal: o.signal,
  });
  const body = (await res.body.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
  if (res.statusCode !== 200) return { detail: `its token service (${url.host}) answered ${res.statusCode}` };
  const token = body.token ?? body.access_token;
  if (typeof token !== 'string' || !token) return { detail: `its token service (${url.host}) gave no token` };
  return { token };
}

/** The registry's digest for the reference's tag now; never throws. */
export async function remoteDigest(
  ref: ImageReference,
  credentials?: Credentials,
  o: RemoteOptions = {},
): Promise<RemoteDigest> {
  const where = referenceText(ref);
  if (!ref.tag) return { ok: false, detail: `${where} is pinned to a digest: there is no tag to follow` };
  const url = `${registryScheme(ref.registry)}://${apiHost(ref.registry)}/v2/${ref.repository}/manifests/${encodeURIComponent(ref.tag)}`;
  const timeoutMs = o.timeoutMs ?? 15_000;
  const signal = AbortSignal.timeout(timeoutMs);
  const dispatcher = o.dispatcher ?? agent();
  const ask = async (method: 'HEAD' | 'GET', authorization?: string) => {
    const res = await request(url, {
      method,
      headers: { accept: MANIFEST_TYPES.join(', '), ...(authorization ? { authorization } : {}) },
      dispatcher,
      signal,
    });
    const bytes = method === 'GET' ? Buffer.from(await res.body.arrayBuffer()) : undefined;
    if (method === 'HEAD') await res.body.dump();
    return { res, bytes };
  };
  try {
    let authorization: string | undefined;
    let { res } = await ask('HEAD');
    if (res.statusCode === 401) {
      const challenge = parseChallenge(header(res.headers, 'www-authenticate') ?? '');
      if (challenge.scheme === 'bearer') {
        const got = await bearerToken(challenge.params, ref, credentials, { dispatcher, signal });
        if ('detail' in got) return { ok: false, detail: `${ref.registry} refused ${where}: ${got.detail}` };
        authorization = `Bearer ${got.token}`;
      } else if (challenge.scheme === 'basic' && credentials) {
        authorization = credentials.basic();
      } else {
        return {
          ok: false,
          detail: `${ref.registry} asks for credentials for ${where} and the Docker config file has none for it`,
        };
      }
      ({ res } = await ask('HEAD', authorization));
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      return {
        ok: false,
        detail: `${ref.registry} refused ${where} (${res.statusCode}): check the credentials`,
      };
    }
    if (res.statusCode === 404) return { ok: false, detail: `${ref.registry} has no ${where}` };
    if (res.statusCode !== 200)
      return { ok: false, detail: `${ref.registry} answered ${res.statusCode} for ${where}` };
    const digest = header(res.headers, 'docker-content-digest');
    if (digest) return { ok: true, digest };
    // Some registries leave the header off a HEAD: the digest is then the sha256 of the manifest itself.
    const got = await ask('GET', authorization);
    const named = header(got.res.headers, 'docker-content-digest');
    if (named) return { ok: true, digest: named };
    if (got.res.statusCode !== 200 || !got.bytes) {
      return { ok: false, detail: `${ref.registry} answered ${got.res.statusCode} for ${where}` };
    }
    return { ok: true, digest: `sha256:${createHash('sha256').update(got.bytes).digest('hex')}` };
  } catch (err) {
    return { ok: false, detail: `${ref.registry} could not be asked for ${where}: ${failure(err)}` };
  }
}
