import type { Dialect } from '../../http/dialect.ts';
import { runpodErrors } from './errors.ts';
import { presentWebhook } from './present.ts';
import { runpodRoutes } from './routes.ts';

/** RunPod serverless under `/v2/{endpointId}`; its webhooks carry the job's /status body. */
export const runpodDialect: Dialect = {
  name: 'runpod',
  prefix: '/v2',
  logComponent: 'runpod-serverless-api',
  errors: runpodErrors,
  // Clients of the real service send their RunPod key (`rpa_…`).
  foreignTokens: true,
  async routes(scope, context) {
    await scope.register(runpodRoutes, { jobs: context.jobs });
  },
  webhookPayload: presentWebhook,
};
