import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Tags the logs of every request a dialect plugin serves with `component: name` (its request line
 * included). Returns the binder for the plugin's error and not-found handlers too: a request refused
 * before the plugin's own hooks run (a 401 from auth) reaches those without passing the hook.
 */
export function logComponent(app: FastifyInstance, name: string): (request: FastifyRequest) => void {
  const bound = new WeakSet<FastifyRequest>();
  const bind = (request: FastifyRequest) => {
    if (bound.has(request)) return;
    bound.add(request);
    request.log = request.log.child({ component: name });
  };
  app.addHook('onRequest', async (request) => bind(request));
  return bind;
}
