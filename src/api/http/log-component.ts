import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';

/** Each request's logger before any component was bound, so a nested scope rebinds instead of stacking. */
const unbound = new WeakMap<FastifyRequest, FastifyBaseLogger>();

/**
 * Tags the logs of every request a scope serves with `component: name` (its request line included),
 * so operators can filter one API's traffic out of the shared log; a nested scope's name wins over
 * its parent's. Returns the binder for error and not-found handlers: a request refused before the
 * scope's hooks ran (a 401 from auth) gets the name there, unless a scope already named it.
 */
export function logComponent(app: FastifyInstance, name: string): (request: FastifyRequest) => void {
  const bind = (request: FastifyRequest) => {
    const original = unbound.get(request) ?? request.log;
    unbound.set(request, original);
    request.log = original.child({ component: name });
  };
  app.addHook('onRequest', async (request) => bind(request));
  return (request) => {
    if (!unbound.has(request)) bind(request);
  };
}
