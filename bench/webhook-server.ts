// The server side of the webhook benchmark, in its own process so client and server do not share an
// event loop. Mode "service": the real buildApp with the real route, durable state in a temp dir, the
// engine deciding every alert; Docker is a stub that knows no containers (the decision path runs in
// full; remediation I/O is not what this measures). Mode "bare": a Fastify route that only parses.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { buildService } from '../src/service.js';
import { BENCH_TOKEN, stubDocker } from './common.js';

async function main() {
  const [mode = 'service', portText = '0'] = process.argv.slice(2);
  const port = Number(portText);
  if (mode === 'bare') {
    const app = Fastify({ bodyLimit: 1_048_576 });
    app.post('/webhooks/alertmanager', async (req) => ({
      received: (req.body as { alerts: unknown[] }).alerts.length,
    }));
    await app.listen({ port, host: '127.0.0.1' });
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'autoheal-bench-'));
    const config = loadConfig({
      WEBHOOK_TOKEN: BENCH_TOKEN,
      DATA_DIR: join(dir, 'data'),
      LOG_FILE: join(dir, 'audit.log'),
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
    });
    // The audit trail is written as in production (sync to a file); stdout is not part of the cost.
    const log = pino(
      {
        level: process.env.BENCH_LOG_LEVEL ?? 'info',
        base: { service: 'autoheal-nexus' },
        timestamp: pino.stdTimeFunctions.isoTime,
      },
      pino.destination({ dest: config.logFile, sync: true }),
    );
    // No notifier: escalations go to the audit log.
    const { app } = await buildService(config, { docker: stubDocker, log, notifier: null });
    await app.listen({ port, host: '127.0.0.1' });
  }
  process.send?.('ready');
}

void main();
