// Which Docker host an alert is about, so that with NODE_NAME set every host acts only on its own
// alerts. An explicit label (host, nodename, node) says it; without one, the host part of the scrape
// target in `instance` does (node_exporter's "otherhost:9100" is about otherhost). Pure.
import { ALERT_LABELS } from './labels.js';

/** The host of a scrape target: `host:port`, `[v6]:port`, a bare host or a bare IPv6 address. */
export function hostOfInstance(instance: string): string | undefined {
  const v = instance.trim();
  if (!v) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(v);
  if (bracketed) return bracketed[1];
  // More than one colon and no brackets: a bare IPv6 address, which carries no port.
  if ((v.match(/:/g) ?? []).length > 1) return v;
  const i = v.lastIndexOf(':');
  const host = i === -1 ? v : v.slice(0, i);
  return host || undefined;
}

/** Names a Prometheus uses for the machine it runs on: they say nothing about which host that is. */
const LOOPBACK = /^(localhost|localhost\.localdomain|ip6-localhost|::1|127(\.\d{1,3}){3})$/i;

/** The host an alert names: an explicit host label first, else the host part of `instance`. */
export function alertHost(labels: Readonly<Record<string, string>>): string | undefined {
  for (const k of ALERT_LABELS.host) {
    const v = labels[k];
    if (v) return v;
  }
  const instance = labels[ALERT_LABELS.instance];
  const host = instance === undefined ? undefined : hostOfInstance(instance);
  return host === undefined || LOOPBACK.test(host) ? undefined : host;
}
