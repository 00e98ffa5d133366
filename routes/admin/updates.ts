// Image updates (auto_patcher): the list of what the registries have that the watched containers do
// not run (read only), and a check run on demand, the same run `SCHEDULES` entries such as
// `0 4 * * *=update:all` start. A single container is updated through POST /api/v1/remediations with
// action update, like every other action.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CheckReport } from '../../src/inputs/updates.js';
import { SECURITY, TAGS, UpdateList, UpdateRun, UpdateRunRequest } from '../../src/http/admin-schemas.js';
import { API, adminHelpers, errors, fail, iso } from './shared.js';

const listOf = (r: CheckReport) => ({
  checkedAt: iso(r.checkedAt),
  containers: r.containers.map(({ rolledBackAt, ...c }) => ({
    ...c,
    ...(rolledBackAt === undefined ? {} : { rolledBackAt: iso(rolledBackAt) }),
  })),
});

const updateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { reasonText, requester, viaDocker } = adminHelpers(app);
  const checker = () =>
    app.deps.updates ??
    fail({ status: 503, error: 'not_configured', message: 'this service has no update checker' });

  app.get(
    `${API}/updates`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary:
          'Ask the registries which watched containers have a newer image under their tag (changes nothing)',
        response: { 200: UpdateList, ...errors },
      },
    },
    async () => listOf(await viaDocker(() => checker().check())),
  );

  app.post(
    `${API}/updates`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary:
          'A check run now: update the containers opted in with autoheal.update=apply, list the notify ones to the humans',
        body: UpdateRunRequest,
        response: { 200: UpdateRun, ...errors },
      },
    },
    async (req) => {
      const requestedBy = requester(req, req.body);
      const run = await viaDocker(() =>
        checker().run({
          source: 'manual',
          requestedBy,
          reason: reasonText(req.body.reason) ?? 'update check requested',
          dryRun: req.body.dryRun ?? false,
        }),
      );
      return { id: run.id, ...listOf(run), requested: [...run.requested], notified: [...run.notified] };
    },
  );
};
export default updateRoutes;
