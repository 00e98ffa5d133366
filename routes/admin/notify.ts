// Free text for the humans (CI jobs use it), queued on the notifier the service was given.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { NotifyAccepted, NotifyRequest, SECURITY, TAGS } from '../../src/http/admin-schemas.js';
import { API, adminHelpers, errors, fail } from './shared.js';

const notifyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { requester } = adminHelpers(app);

  app.post(
    `${API}/notify`,
    {
      schema: {
        tags: TAGS,
        security: SECURITY,
        summary: 'Send a message to the humans through the Telegram notifier (CI jobs use it)',
        body: NotifyRequest,
        response: { 202: NotifyAccepted, ...errors },
      },
    },
    async (req, reply) => {
      const notifier = app.deps.notifier;
      if (!notifier?.enabled) {
        return fail({
          status: 503,
          error: 'not_configured',
          message:
            'no notifier is configured: set TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE) and TELEGRAM_CHAT_ID',
        });
      }
      const id = notifier.enqueueText(req.body.text, { silent: req.body.silent ?? false });
      const requestedBy = requester(req, req.body);
      req.log.info(
        { event: 'notify', notificationId: id, requestedBy, length: req.body.text.length },
        `message queued for the humans by ${requestedBy}`,
      );
      return reply.code(202).send({ id, status: 'queued' as const });
    },
  );
};
export default notifyRoutes;
