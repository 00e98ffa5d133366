// Request and response schemas of the admin API (routes/admin/). They validate input, shape output
// (fast-json-stringify drops fields a schema does not name) and generate the OpenAPI document.
import { type Static, Type } from 'typebox';
import { actionNames } from '../core/actions.js';
import { TARGET_GRAMMAR } from '../core/targets.js';
import { defaultActions } from '../actions/registry.js';

/** For the OpenAPI text: the actions the service has unless it was built with its own registry. */
const ACTION_LIST = actionNames(defaultActions()).join(', ');

export const SECURITY = [{ adminToken: [] as string[] }];
export const TAGS = ['admin'];

const Iso = (description: string) => Type.String({ format: 'date-time', description });
const Requester = Type.String({
  minLength: 1,
  maxLength: 128,
  description: 'Who asks (kept in the audit log); the X-Requested-By header says the same; default admin-api',
});
const Reason = Type.String({ maxLength: 500, description: 'Why (kept in the audit log)' });

export const ErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  target: Type.Optional(Type.String()),
  candidates: Type.Optional(
    Type.Array(Type.String(), { description: 'target_ambiguous: the containers an id prefix matches' }),
  ),
  validActions: Type.Optional(Type.Array(Type.String())),
});

export const RemediationRequest = Type.Object(
  {
    target: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: `${TARGET_GRAMMAR[0]?.toUpperCase()}${TARGET_GRAMMAR.slice(1)} (cleanup acts on the host; it is the default there)`,
        examples: ['web', 'service:shop/web', 'host'],
      }),
    ),
    action: Type.String({
      minLength: 1,
      maxLength: 64,
      description: `One of the service's actions: ${ACTION_LIST}`,
      examples: ['restart'],
    }),
    reason: Type.Optional(Reason),
    requestedBy: Type.Optional(Requester),
    step: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        description:
          'scale_up, scale_down: replicas to add or remove (default 1); refused when it would leave the service outside autoheal.scale.min/max',
      }),
    ),
    dryRun: Type.Optional(Type.Boolean({ description: 'Decide and log, touch nothing' })),
    force: Type.Optional(
      Type.Boolean({
        description: 'Skip cooldown, attempt limit and circuit breaker; never scope, protection or a pause',
      }),
    ),
  },
  { additionalProperties: false },
);
export type RemediationRequest = Static<typeof RemediationRequest>;

export const Accepted = Type.Object({
  id: Type.String({ description: 'Follow it at GET /api/v1/remediations/{id}' }),
  state: Type.String({
    description:
      'queued; for a repeated Idempotency-Key, the state of the remediation that key started (nothing new is queued)',
  }),
  target: Type.String(),
  action: Type.String(),
  url: Type.String(),
});

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const NameParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 256, description: 'Container name or id' }),
});

export const Remediation = Type.Object({
  id: Type.String(),
  target: Type.String(),
  action: Type.String(),
  state: Type.Union([
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
    Type.Literal('timed_out'),
    Type.Literal('skipped'),
    Type.Literal('dry_run'),
  ]),
  done: Type.Boolean({ description: 'The state is final' }),
  source: Type.String(),
  createdAt: Iso('When it was requested'),
  updatedAt: Iso('Last change'),
  container: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  requestedBy: Type.Optional(Type.String()),
  skipReason: Type.Optional(Type.String({ description: 'Why the policy did not act (state skipped)' })),
  verification: Type.Optional(Type.String({ description: 'Result of the check that the fix worked' })),
  detail: Type.Optional(Type.String()),
  reclaimedBytes: Type.Optional(Type.Number()),
  durationMs: Type.Optional(Type.Number()),
  results: Type.Optional(
    Type.Record(Type.String(), Type.Object({ state: Type.String(), detail: Type.Optional(Type.String()) }), {
      description: 'Each container of a service target, with its own result',
    }),
  ),
});
export type Remediation = Static<typeof Remediation>;

export const ContainersQuery = Type.Object(
  {
    all: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false')], {
        description: 'Also list containers outside the watch scope',
      }),
    ),
  },
  { additionalProperties: false },
);

/** A target's record as the policy reads it: a container's, or a service's as a whole. */
const StandingFields = {
  attempts: Type.Integer({ description: 'Actions since it was last seen recovered' }),
  maxAttempts: Type.Integer(),
  cooldownRemainingSeconds: Type.Integer(),
  pausedUntil: Type.Union([Iso('Healing held until'), Type.Null()]),
  givenUp: Type.Boolean(),
  inProgress: Type.Optional(Type.String({ description: 'The action running now' })),
  lastAction: Type.Optional(Type.String()),
  lastActionAt: Type.Optional(Iso('When the last action started')),
  lastResult: Type.Optional(Type.String()),
  incidentId: Type.Optional(Type.String()),
};

export const ContainerStatus = Type.Object({
  name: Type.String(),
  id: Type.String(),
  image: Type.String(),
  state: Type.String(),
  health: Type.String(),
  status: Type.String(),
  service: Type.Optional(Type.String()),
  project: Type.Optional(Type.String()),
  watched: Type.Boolean({ description: 'In the watch scope' }),
  scopeDetail: Type.Optional(Type.String()),
  protected: Type.Boolean(),
  ...StandingFields,
});
export type ContainerStatus = Static<typeof ContainerStatus>;
export const ContainerList = Type.Object({ containers: Type.Array(ContainerStatus) });

const Counts = (what: string) =>
  Type.Object({
    total: Type.Integer({ description: what }),
    running: Type.Integer(),
    healthy: Type.Integer({ description: 'Running, and healthy or without a health check' }),
  });

const LastRemediation = Type.Object({
  id: Type.String({ description: 'GET /api/v1/remediations/{id}' }),
  state: Type.String(),
  at: Iso('When it was asked for'),
  updatedAt: Iso('Its last change'),
  detail: Type.Optional(Type.String()),
});

export const ComposeServiceOut = Type.Object({
  key: Type.String({ description: 'The record it is kept under, and a target: service:PROJECT/NAME' }),
  project: Type.String(),
  service: Type.String(),
  replicas: Counts('Replicas (one-off runs and replicas put aside not counted)'),
  scale: Type.Optional(
    Type.Object(
      {
        min: Type.Integer(),
        max: Type.Integer(),
        minFrom: Type.String({ description: 'autoheal.scale.min=N or SCALE_MIN=N' }),
        maxFrom: Type.String({ description: 'autoheal.scale.max=N or SCALE_MAX=N' }),
      },
      { description: 'Set when the service labels autoheal.scale.min or autoheal.scale.max' },
    ),
  ),
  containers: Type.Array(Type.String()),
  ...StandingFields,
});
export const ComposeProjectOut = Type.Object({
  project: Type.String({ description: 'A target as project:NAME' }),
  containers: Counts('Containers of the project in the watch scope'),
  services: Type.Array(Type.String()),
  lastRestart: Type.Optional(LastRemediation),
});
export const SwarmServiceOut = Type.Object({
  key: Type.String({ description: 'The record it is kept under, and a target: swarm:NAME' }),
  name: Type.String(),
  mode: Type.Union([Type.Literal('replicated'), Type.Literal('global')]),
  replicas: Type.Object({
    desired: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Replicas wanted (null for a global service: one per node)',
    }),
    running: Type.Integer({ description: 'Tasks Swarm wants running that run' }),
    wanted: Type.Integer({ description: 'Tasks Swarm wants running' }),
  }),
  health: Type.String({ description: 'unhealthy while a wanted task is not running or one failed recently' }),
  image: Type.String(),
  updateState: Type.Optional(Type.String()),
  ...StandingFields,
});
export const ServiceList = Type.Object({
  services: Type.Array(ComposeServiceOut, { description: 'Compose services in the watch scope' }),
  stacks: Type.Array(ComposeProjectOut, { description: 'Compose projects in the watch scope' }),
  swarm: Type.Object({
    manager: Type.Boolean({
      description: 'This engine is a Swarm manager (else no Swarm services are listed)',
    }),
    services: Type.Array(SwarmServiceOut),
  }),
});
export type ComposeServiceOut = Static<typeof ComposeServiceOut>;
export type ComposeProjectOut = Static<typeof ComposeProjectOut>;
export type SwarmServiceOut = Static<typeof SwarmServiceOut>;

export const IncidentsQuery = Type.Object(
  {
    since: Type.Optional(
      Type.String({
        description: 'Incidents open at or after this: an ISO 8601 time, or a duration ago (24h, 7d)',
        examples: ['24h'],
      }),
    ),
    container: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'At most this many (100)' })),
  },
  { additionalProperties: false },
);

const IncidentEvent = Type.Object({
  at: Iso('When'),
  type: Type.String(),
  source: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  action: Type.Optional(Type.String()),
  result: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
  alertname: Type.Optional(Type.String()),
  fingerprint: Type.Optional(Type.String()),
  remediationId: Type.Optional(Type.String()),
});
export const IncidentOut = Type.Object({
  id: Type.String(),
  container: Type.String(),
  status: Type.String(),
  openedAt: Iso('Opened'),
  closedAt: Type.Optional(Iso('Closed')),
  alertname: Type.Optional(Type.String()),
  events: Type.Array(IncidentEvent, { description: 'Signals, decisions, actions and verifications' }),
});
export type IncidentOut = Static<typeof IncidentOut>;
export const IncidentList = Type.Object({ incidents: Type.Array(IncidentOut) });

export const PauseRequest = Type.Object(
  {
    for: Type.String({
      minLength: 1,
      maxLength: 32,
      description: 'How long: 90s, 30m, 1h, 2d, 1h30m',
      examples: ['1h'],
    }),
    reason: Type.Optional(Reason),
    requestedBy: Type.Optional(Requester),
  },
  { additionalProperties: false },
);
export const ControlRequest = Type.Object(
  { reason: Type.Optional(Reason), requestedBy: Type.Optional(Requester) },
  { additionalProperties: false },
);
export const PauseState = Type.Object({
  container: Type.String(),
  pausedUntil: Type.Union([Iso('Healing held until'), Type.Null()]),
  detail: Type.Optional(Type.String()),
});
export const ResetState = Type.Object({
  container: Type.String(),
  attempts: Type.Integer(),
  givenUp: Type.Boolean(),
});

export const NotifyRequest = Type.Object(
  {
    text: Type.String({ minLength: 1, maxLength: 4096, description: 'The message, as plain text' }),
    silent: Type.Optional(Type.Boolean({ description: 'Deliver without a notification sound' })),
    requestedBy: Type.Optional(Requester),
  },
  { additionalProperties: false },
);
export const NotifyAccepted = Type.Object({
  id: Type.String(),
  status: Type.Literal('queued'),
});

const UpdateStatus = Type.Union([
  Type.Literal('up_to_date'),
  Type.Literal('available'),
  Type.Literal('unknown'),
]);
export const ContainerUpdate = Type.Object({
  container: Type.String(),
  mode: Type.Union([Type.Literal('apply'), Type.Literal('notify'), Type.Literal('off')], {
    description: 'autoheal.update, else AUTOPATCH; off for a protected container',
  }),
  status: UpdateStatus,
  reference: Type.String({ description: 'The image reference in full' }),
  localDigest: Type.Optional(Type.String({ description: 'What the container runs' })),
  remoteDigest: Type.Optional(Type.String({ description: 'What the tag names at the registry now' })),
  rolledBackAt: Type.Optional(
    Iso('When an update to this same image was rolled back: check runs do not apply it again'),
  ),
  detail: Type.String(),
});
export const UpdateList = Type.Object({
  checkedAt: Iso('When the registries were asked'),
  containers: Type.Array(ContainerUpdate),
});
export const UpdateRunRequest = Type.Object(
  {
    dryRun: Type.Optional(
      Type.Boolean({ description: 'Decide and report what would be updated; change nothing' }),
    ),
    reason: Type.Optional(Reason),
    requestedBy: Type.Optional(Requester),
  },
  { additionalProperties: false },
);
export const UpdateRun = Type.Object({
  id: Type.String({ description: 'The check run (in the audit log as runId)' }),
  checkedAt: Iso('When the registries were asked'),
  containers: Type.Array(ContainerUpdate),
  requested: Type.Array(
    Type.Object({
      target: Type.String(),
      remediationId: Type.String({ description: 'Follow it at GET /api/v1/remediations/{id}' }),
    }),
    { description: 'One update per container or Compose service opted in with apply' },
  ),
  notified: Type.Array(Type.String(), {
    description: 'notify containers listed to the humans in one message',
  }),
});

const ForecastOut = Type.Object({
  target: Type.String({ description: 'A container name (memory) or a mountpoint (disk)' }),
  kind: Type.String({
    description: 'memory (working set against the memory limit) or disk (used against size)',
  }),
  at: Iso('When it was computed'),
  current: Type.Number({ description: 'The latest value (bytes)' }),
  limit: Type.Number({ description: 'Where it fails (bytes)' }),
  reason: Type.String({
    description:
      'ok (sound, inside the horizon), too_few_points, no_trend, poor_fit, slowing, beyond_horizon, at_limit',
  }),
  detail: Type.String(),
  failureAt: Type.Optional(Iso('When the fitted line reaches the limit')),
  secondsUntilFailure: Type.Optional(Type.Number()),
  slopePerSecond: Type.Optional(Type.Number({ description: 'The fitted trend (bytes per second)' })),
  r2: Type.Optional(Type.Number({ description: 'R² of the fit over its window' })),
  spread: Type.Optional(Type.Number({ description: 'Median absolute residual (bytes)' })),
  points: Type.Optional(Type.Integer()),
  windowSeconds: Type.Optional(Type.Number()),
  agreedRuns: Type.Integer({ description: 'Consecutive runs whose forecast was sound' }),
  action: Type.Optional(
    Type.String({ description: 'The preventive action it takes (restart, recreate, cleanup)' }),
  ),
  plannedAt: Type.Optional(Iso('A preventive action placed for this time')),
  plannedReason: Type.Optional(Type.String({ description: 'maintenance_window or asap' })),
  lastAction: Type.Optional(
    Type.Object({
      at: Iso('When'),
      remediationId: Type.String(),
      before: Type.Number(),
      helped: Type.Optional(Type.Boolean()),
    }),
  ),
  heldUntil: Type.Optional(Iso('No preventive action until then (the last one did not help)')),
});
export type ForecastOut = Static<typeof ForecastOut>;
export const ForecastList = Type.Object({
  enabled: Type.Boolean({ description: 'false when PROMETHEUS_URL is not set' }),
  forecasts: Type.Array(ForecastOut),
});
