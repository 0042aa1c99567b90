import { timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { problem, sendProblem } from './problem.ts';

export const ADMIN_QUEUES_PATH = '/admin/queues';

/** Bearer <key>, or Basic with the key as password (so a browser's login prompt works). */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization ?? '';
  const [scheme, value] = header.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString();
    return decoded.slice(decoded.indexOf(':') + 1);
  }
  return undefined;
}

function sameKey(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Bull Board over the BullMQ queues, in its own encapsulated plugin behind the admin key. */
export async function registerAdminQueues(app: FastifyInstance, options: { queues: Queue[]; adminApiKey: string }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({ queues: options.queues.map((queue) => new BullMQAdapter(queue)), serverAdapter });
  await app.register(async (admin) => {
    admin.addHook('onRequest', async (request, reply) => {
      if (sameKey(presentedKey(request), options.adminApiKey)) return;
      reply.header('www-authenticate', 'Basic realm="darkroom admin", charset="UTF-8"');
      return sendProblem(reply, problem(401, 'unauthorized', 'The admin queues need the ADMIN_API_KEY (Bearer, or Basic with it as the password)'));
    });
    await admin.register(serverAdapter.registerPlugin(), { prefix: ADMIN_QUEUES_PATH });
  });
}
