import type { Dialect } from '../../http/dialect.ts';
import { tasksErrors } from './errors.ts';
import { tasksRoutes } from './routes.ts';

/** The RunPod-endpoints origin's own API (FastAPI) under `/api/v1/runpod`. */
export const tasksDialect: Dialect = {
  name: 'tasks',
  prefix: '/api/v1/runpod',
  logComponent: 'runpod-api',
  errors: tasksErrors,
  // The origin app's clients send that app's own tokens.
  foreignTokens: true,
  async routes(scope, context) {
    await scope.register(tasksRoutes, { jobs: context.jobs, checks: context.providerChecks });
  },
};
