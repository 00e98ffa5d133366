// Every label key the service reads, on containers and on alerts, in one place.

/** Container labels an operator sets to steer healing. */
export const CONTAINER_LABELS = {
  enable: 'autoheal.enable',
  /** docker-autoheal's opt-in label, honoured so its users can switch without relabelling. */
  legacyEnable: 'autoheal',
  actions: 'autoheal.actions',
  maxAttempts: 'autoheal.max_attempts',
  cooldown: 'autoheal.cooldown',
  stopTimeout: 'autoheal.stop.timeout',
  onUnhealthy: 'autoheal.on_unhealthy',
  /** An exit 0 of a container whose restart policy is no or on-failure is a failure only with this set. */
  onExitZero: 'autoheal.on_exit_zero',
  startPeriod: 'autoheal.start_period',
  protect: 'autoheal.protect',
  pausedUntil: 'autoheal.paused_until',
  composeProject: 'com.docker.compose.project',
  composeService: 'com.docker.compose.service',
  composeOneoff: 'com.docker.compose.oneoff',
  /** A replica's number within its service (1, 2, …), as `docker compose up --scale` numbers them. */
  composeNumber: 'com.docker.compose.container-number',
  /** Compose v2's record of depends_on: `service:condition:restart`, comma-joined (core/compose-graph.ts). */
  composeDependsOn: 'com.docker.compose.depends_on',
  /** The same, set by hand where Compose writes none (docker-compose 1.x); a bare `db` means started. */
  dependsOn: 'autoheal.depends_on',
  /** restart | recreate | ignore: what happens to a container's dependents (on the dependent or the parent). */
  dependents: 'autoheal.dependents',
  /** Set by Swarm on a task's container: the container is Swarm's, healed through its service. */
  swarmTask: 'com.docker.swarm.task.id',
  swarmService: 'com.docker.swarm.service.name',
  /** apply | notify | off: whether image updates are applied, only listed, or never (AUTOPATCH otherwise). */
  update: 'autoheal.update',
  /** The fewest and most replicas scale_down and scale_up leave a Compose or Swarm service with. */
  scaleMin: 'autoheal.scale.min',
  scaleMax: 'autoheal.scale.max',
  /** Set on a replica scale_up added (its value: when), so a restart of the service finds what it left. */
  scaleAdded: 'autoheal.scale.added',
  /** restart | recreate | false: the preventive action a memory forecast takes (restart by default). */
  forecast: 'autoheal.forecast',
} as const;

/** Alert labels, in order of preference where several name the same thing. */
export const ALERT_LABELS = {
  alertname: 'alertname',
  remediation: 'remediation',
  severity: 'severity',
  containerName: ['container', 'container_name', 'name'],
  service: ['service', 'container_label_com_docker_compose_service'],
  project: ['project', 'container_label_com_docker_compose_project'],
  /** A Swarm service: named by the alert, or cAdvisor's label of a task's container. */
  swarmService: ['swarm_service', 'container_label_com_docker_swarm_service_name'],
  host: ['host', 'nodename', 'node'],
  /** The scrape target; its host part names the host when no host label does (see core/host.ts). */
  instance: 'instance',
  /** How many replicas scale_up adds or scale_down removes (a label, else an annotation; default 1). */
  step: 'step',
} as const;
