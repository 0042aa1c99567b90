import type { FastifyInstance } from 'fastify';

/**
 * Tags the request logs of one dialect's routes with its component name (`civitai-api`, …), so
 * operators can filter one API's traffic out of the shared log, as the origins' log prefixes allowed.
 * Call it inside the dialect's own (encapsulated) plugin.
 */
export function logComponent(app: FastifyInstance, component: string): void {
  app.addHook('onRequest', async (request) => {
    request.log = request.log.child({ component });
  });
}
