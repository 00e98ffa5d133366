// Every metric the service exposes, created in one place and pre-created at zero so that rules and
// dashboards see a series before the first event. All names start with autoheal_.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ESCALATION_KINDS } from './core/escalation.js';
import { DECISION_REASONS, REMEDIATION_RESULTS } from './core/types.js';

export const METRIC_PREFIX = 'autoheal_';

export function createMetrics(registry: Registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];

  const alertsReceived = new Counter({
    name: 'autoheal_alerts_received_total',
    help: 'Alerts received from Alertmanager, by alert status',
    labelNames: ['status'] as const,
    registers,
  });
  for (const status of ['firing', 'resolved']) alertsReceived.inc({ status }, 0);

  const webhookRequests = new Counter({
    name: 'autoheal_webhook_requests_total',
    help: 'Webhook deliveries, by HTTP status code',
    labelNames: ['code'] as const,
    registers,
  });
  for (const code of ['200', '400', '401', '413', '503']) webhookRequests.inc({ code }, 0);

  const httpDuration = new Histogram({
    name: 'autoheal_http_request_duration_seconds',
    help: 'HTTP request latency, by route and status code',
    labelNames: ['route', 'method', 'code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });

  const decisions = new Counter({
    name: 'autoheal_decisions_total',
    help: 'Policy decisions, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const reason of DECISION_REASONS) decisions.inc({ reason }, 0);

  const remediations = new Counter({
    name: 'autoheal_remediations_total',
    help: 'Remediations carried out, by action and result',
    labelNames: ['action', 'result'] as const,
    registers,
  });
  const remediationDuration = new Histogram({
    name: 'autoheal_remediation_duration_seconds',
    help: 'Time from the start of a remediation to its verified result',
    labelNames: ['action'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers,
  });
  /** Pre-creates the per-action series for the actions the engine was handed (its registry). */
  const primeActions = (actions: Iterable<string>): void => {
    for (const action of actions) {
      remediationDuration.zero({ action });
      for (const result of REMEDIATION_RESULTS) remediations.inc({ action, result }, 0);
    }
  };

  const updates = new Counter({
    name: 'autoheal_updates_total',
    help: 'Image updates: available (found by a check), updated (verified), rolled_back, failed',
    labelNames: ['result'] as const,
    registers,
  });
  for (const result of ['available', 'updated', 'rolled_back', 'failed']) updates.inc({ result }, 0);
  const scaleEvents = new Counter({
    name: 'autoheal_scale_events_total',
    help: 'Scale steps of Compose and Swarm services, by direction (up, down) and result (succeeded, failed, refused, dry_run)',
    labelNames: ['direction', 'result'] as const,
    registers,
  });
  for (const direction of ['up', 'down'])
    for (const result of ['succeeded', 'failed', 'refused', 'dry_run'])
      scaleEvents.inc({ direction, result }, 0);
  const silences = new Counter({
    name: 'autoheal_silences_total',
    help: 'Alertmanager silences the service asked for while it remediated: op (create, expire), result (ok, failed)',
    labelNames: ['op', 'result'] as const,
    registers,
  });
  for (const op of ['create', 'expire'])
    for (const result of ['ok', 'failed']) silences.inc({ op, result }, 0);
  const escalationAlerts = new Counter({
    name: 'autoheal_escalation_alerts_total',
    help: 'Escalation alerts posted to Alertmanager (ESCALATE_VIA): op (fire, resolve), result (ok, failed)',
    labelNames: ['op', 'result'] as const,
    registers,
  });
  for (const op of ['fire', 'resolve'])
    for (const result of ['ok', 'failed']) escalationAlerts.inc({ op, result }, 0);
  const replicas = new Gauge({
    name: 'autoheal_replicas',
    help: 'Replicas of each service the service has scaled or was asked to scale (service:PROJECT/NAME, swarm:NAME)',
    labelNames: ['service'] as const,
    registers,
  });
  const escalations = new Counter({
    name: 'autoheal_escalations_total',
    help: 'Escalation events raised for a human, by kind',
    labelNames: ['kind'] as const,
    registers,
  });
  for (const kind of ESCALATION_KINDS) {
    escalations.inc({ kind }, 0);
  }

  const givenUp = new Gauge({
    name: 'autoheal_given_up_containers',
    help: 'Containers the service has given up on until they recover or an operator resets them',
    registers,
  });
  const circuitOpen = new Gauge({
    name: 'autoheal_circuit_open',
    help: '1 while the host-wide circuit breaker pauses automatic actions',
    registers,
  });
  const incidentsOpen = new Gauge({
    name: 'autoheal_incidents_open',
    help: 'Incidents not yet closed',
    registers,
  });
  const signalsPending = new Gauge({
    name: 'autoheal_signals_pending',
    help: 'Accepted signals not decided yet because the Docker engine or the state did not answer; retried',
    registers,
  });
  const reclaimedBytes = new Counter({
    name: 'autoheal_cleanup_reclaimed_bytes_total',
    help: 'Bytes reclaimed by cleanup (prune and log truncation)',
    registers,
  });
  const inFlight = new Gauge({
    name: 'autoheal_remediations_in_flight',
    help: 'Remediations running now',
    registers,
  });
  const stateErrors = new Counter({
    name: 'autoheal_state_errors_total',
    help: 'Failures to read or write durable state',
    labelNames: ['op'] as const,
    registers,
  });
  for (const op of ['read', 'write']) stateErrors.inc({ op }, 0);

  // Health watcher (the engine's own view of watched containers).
  const containerLabels = ['container', 'service', 'project'] as const;
  const containerHealthy = new Gauge({
    name: 'autoheal_container_healthy',
    help: 'Watched container health: 1 healthy (or running without a health check), 0 not',
    labelNames: containerLabels,
    registers,
  });
  const containerUp = new Gauge({
    name: 'autoheal_container_up',
    help: 'Watched container is running: 1 yes, 0 no',
    labelNames: containerLabels,
    registers,
  });
  const containerRestarts = new Gauge({
    name: 'autoheal_container_restarts',
    help: "The engine's restart count of a watched container",
    labelNames: containerLabels,
    registers,
  });
  const dockerConnected = new Gauge({
    name: 'autoheal_docker_connected',
    help: '1 while the Docker engine answers and the event stream is connected',
    registers,
  });
  const dockerEvents = new Counter({
    name: 'autoheal_docker_events_total',
    help: 'Container events read from the engine, by action',
    labelNames: ['action'] as const,
    registers,
  });
  for (const action of ['health_status', 'die', 'oom', 'start', 'destroy', 'kill', 'stop']) {
    dockerEvents.inc({ action }, 0);
  }
  const reconcileDuration = new Histogram({
    name: 'autoheal_reconcile_duration_seconds',
    help: 'Time of one reconcile pass over the watched containers',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });

  // Notifications.
  const notifications = new Counter({
    name: 'autoheal_notifications_total',
    help: 'Notification deliveries, by channel and result',
    labelNames: ['channel', 'result'] as const,
    registers,
  });
  for (const result of ['sent', 'retried', 'failed', 'dropped'])
    notifications.inc({ channel: 'telegram', result }, 0);
  const notificationQueueDepth = new Gauge({
    name: 'autoheal_notification_queue_depth',
    help: 'Notifications waiting in the durable outbox',
    registers,
  });

  // Forecasts (PROMETHEUS_URL): time until a predicted failure, the fit's quality, runs and actions.
  const forecastSeconds = new Gauge({
    name: 'autoheal_forecast_seconds_until_failure',
    help: 'Seconds until the forecast line reaches the limit (memory limit, filesystem size), by target and kind',
    labelNames: ['target', 'kind'] as const,
    registers,
  });
  const forecastR2 = new Gauge({
    name: 'autoheal_forecast_fit_r2',
    help: 'R² of the forecast fit over its window (1: every sample on the line), by target and kind',
    labelNames: ['target', 'kind'] as const,
    registers,
  });
  const forecastRuns = new Counter({
    name: 'autoheal_forecast_runs_total',
    help: 'Forecast runs against Prometheus, by result (ok, failed)',
    labelNames: ['result'] as const,
    registers,
  });
  for (const result of ['ok', 'failed']) forecastRuns.inc({ result }, 0);
  const forecastActions = new Counter({
    name: 'autoheal_forecast_actions_total',
    help: 'Preventive actions of forecasts, by kind and result (requested, daily_cap, ineffective)',
    labelNames: ['kind', 'result'] as const,
    registers,
  });

  // Telegram controls: taps and commands, by kind (button, command, update) and result.
  const chatUpdates = new Counter({
    name: 'autoheal_telegram_updates_total',
    help: 'Telegram updates received: taps and commands, by kind and result (accepted, failed, refused, invalid, ignored, repeat)',
    labelNames: ['kind', 'result'] as const,
    registers,
  });
  for (const kind of ['button', 'command'])
    for (const result of ['accepted', 'failed', 'refused']) chatUpdates.inc({ kind, result }, 0);

  const buildInfo = new Gauge({
    name: 'autoheal_build_info',
    help: 'Always 1; labels say the version and Node.js release',
    labelNames: ['version', 'node'] as const,
    registers,
  });

  return {
    registry,
    alertsReceived,
    webhookRequests,
    httpDuration,
    decisions,
    remediations,
    updates,
    scaleEvents,
    replicas,
    silences,
    escalationAlerts,
    remediationDuration,
    escalations,
    givenUp,
    circuitOpen,
    incidentsOpen,
    signalsPending,
    reclaimedBytes,
    inFlight,
    stateErrors,
    containerHealthy,
    containerUp,
    containerRestarts,
    dockerConnected,
    dockerEvents,
    reconcileDuration,
    notifications,
    notificationQueueDepth,
    chatUpdates,
    forecastSeconds,
    forecastR2,
    forecastRuns,
    forecastActions,
    buildInfo,
    primeActions,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
