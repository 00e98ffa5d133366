// The Alertmanager webhook as an input: the payload schema (version 4, unknown fields accepted) and the
// normalisation of each alert into a Signal. It decides nothing.
import { randomUUID } from 'node:crypto';
import { type Static, Type } from 'typebox';
import { defaultActions } from '../actions/registry.js';
import { type ActionCatalog, actsOn } from '../core/actions.js';
import { ALERT_LABELS } from '../core/labels.js';
import { type CompiledRule, matchRule } from '../core/rules.js';
import { alertHost } from '../core/host.js';
import { targetFromLabels } from '../core/targets.js';
import type { Signal, TargetSelector } from '../core/types.js';

const StringMap = Type.Record(Type.String(), Type.String());

export const AlertSchema = Type.Object({
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  labels: StringMap,
  annotations: Type.Optional(StringMap),
  startsAt: Type.Optional(Type.String({ maxLength: 64 })),
  endsAt: Type.Optional(Type.String({ maxLength: 64 })),
  generatorURL: Type.Optional(Type.String({ maxLength: 4096 })),
  fingerprint: Type.Optional(Type.String({ maxLength: 128 })),
});

export const WebhookPayloadSchema = Type.Object({
  version: Type.Optional(Type.String({ maxLength: 8 })),
  receiver: Type.Optional(Type.String()),
  status: Type.Optional(Type.Union([Type.Literal('firing'), Type.Literal('resolved')])),
  alerts: Type.Array(AlertSchema, { maxItems: 10_000 }),
  groupLabels: Type.Optional(StringMap),
  commonLabels: Type.Optional(StringMap),
  commonAnnotations: Type.Optional(StringMap),
  externalURL: Type.Optional(Type.String({ maxLength: 4096 })),
  groupKey: Type.Optional(Type.String()),
  truncatedAlerts: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type WebhookPayload = Static<typeof WebhookPayloadSchema>;
export type Alert = Static<typeof AlertSchema>;

/**
 * The target an alert names. An alert with only a project label names the whole project to an action on
 * whole projects (remediation=restart_stack with project=shop), and nothing to any other.
 */
function alertTarget(
  labels: Readonly<Record<string, string>>,
  action: string | undefined,
  actions: ActionCatalog,
): TargetSelector {
  const t = targetFromLabels(labels, action);
  const project = ALERT_LABELS.project.map((k) => labels[k]).find(Boolean);
  if (t.kind === 'none' && project && action && actsOn(actions, action, 'compose_project'))
    return { kind: 'project', project };
  return t;
}

/** One alert of a webhook delivery as a Signal; the action comes from its label or the rules file. */
export function alertToSignal(
  alert: Alert,
  payload: WebhookPayload,
  rules: ReadonlyArray<CompiledRule>,
  now: number,
  actions: ActionCatalog = defaultActions(),
): Signal {
  const labels = alert.labels;
  let action = labels[ALERT_LABELS.remediation];
  let params: Record<string, string> = {};
  if (action === undefined) {
    const rule = matchRule(rules, labels);
    if (rule) {
      action = rule.action;
      params = { ...rule.params };
    }
  }
  // A scale step's size: the alert's own label, else its annotation, else the rule's.
  const step = labels[ALERT_LABELS.step] ?? alert.annotations?.[ALERT_LABELS.step];
  if (step !== undefined) params = { ...params, step };
  return {
    id: randomUUID(),
    source: 'alertmanager',
    status: alert.status,
    receivedAt: now,
    condition: 'alert',
    target: alertTarget(labels, action, actions),
    action,
    params,
    labels,
    annotations: alert.annotations ?? {},
    alertname: labels[ALERT_LABELS.alertname],
    fingerprint: alert.fingerprint,
    startsAt: alert.startsAt,
    severity: labels[ALERT_LABELS.severity],
    host: alertHost(labels),
    generatorURL: alert.generatorURL,
    externalURL: payload.externalURL,
  };
}
