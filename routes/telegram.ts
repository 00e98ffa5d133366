// POST /telegram/webhook (TELEGRAM_UPDATES=webhook): Telegram posts each update here with the
// secret_token the service registered in the X-Telegram-Bot-Api-Secret-Token header. The header is
// checked in constant time before the body is read; the update is journalled before the 200, so an
// answered delivery is never lost, and a delivery Telegram retries is recognised as a repeat.
import type { Update } from '@grammyjs/types';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { safeEqual } from '../src/http/auth.js';

const UpdateBody = Type.Object(
  { update_id: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) },
  { additionalProperties: true },
);
const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });

const telegramRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const receiver = app.deps.telegram;
  if (!receiver) return;

  app.post(
    '/telegram/webhook',
    {
      schema: { body: UpdateBody, response: { 200: Type.Object({}), 401: ErrorBody, 503: ErrorBody } },
      onRequest: async (req, reply) => {
        const got = req.headers['x-telegram-bot-api-secret-token'];
        if (typeof got !== 'string' || !safeEqual(got, receiver.secret)) {
          req.log.warn(
            { event: 'telegram_webhook_refused', ip: req.ip },
            'Telegram webhook call without the right secret token: refused',
          );
          return reply.code(401).send({ error: 'unauthorized', message: 'missing or invalid secret token' });
        }
      },
    },
    async (req, reply) => {
      if (!receiver.receive([req.body as unknown as Update])) {
        // Telegram retries a delivery that is not answered 200.
        return reply
          .code(503)
          .send({ error: 'state_unavailable', message: 'cannot record the update; retry' });
      }
      return {};
    },
  );
};
export default telegramRoutes;
