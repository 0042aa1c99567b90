import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { markRoutesPublic } from './auth.ts';
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

/**
 * Bull Board over the BullMQ queues, in its own encapsulated plugin behind an admin credential. It
 * checks credentials itself (the API's auth passes its routes by): a browser's login prompt sends
 * Basic, which the API does not take.
 */
export async function registerAdminQueues(
  app: FastifyInstance,
  options: { queues: Queue[]; isAdmin: (secret: string) => Promise<boolean> },
): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({ queues: options.queues.map((queue) => new BullMQAdapter(queue)), serverAdapter });
  await app.register(async (admin) => {
    markRoutesPublic(admin);
    admin.addHook('onRequest', async (request, reply) => {
      const presented = presentedKey(request);
      if (presented !== undefined && (await options.isAdmin(presented))) return;
      reply.header('www-authenticate', 'Basic realm="darkroom admin", charset="UTF-8"');
      return sendProblem(
        reply,
        problem(401, 'unauthorized', 'The admin queues need ADMIN_API_KEY or a key with the admin scope (Bearer, or Basic with it as the password)'),
      );
    });
    await admin.register(serverAdapter.registerPlugin(), { prefix: ADMIN_QUEUES_PATH });
  });
}
