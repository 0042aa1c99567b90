import type { Dialect } from '../../http/dialect.ts';
import { civitaiErrors } from './errors.ts';
import { presentWebhook } from './present.ts';
import { civitaiRoutes } from './routes.ts';

/** The Civitai orchestrator at the service's own paths (`/v1/consumer/jobs`, `/v2/resources`); its callbacks carry the v1 JobStatus. */
export const civitaiDialect: Dialect = {
  name: 'civitai',
  prefix: '',
  logComponent: 'civitai-api',
  errors: civitaiErrors,
  // Clients of the real service send their Civitai token.
  foreignTokens: true,
  routes: (scope, context) => civitaiRoutes(scope, { jobs: context.jobs, resources: context.resources }),
  webhookPayload: presentWebhook,
};
