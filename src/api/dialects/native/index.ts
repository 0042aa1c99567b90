import type { Dialect } from '../../http/dialect.ts';
import { nativeErrors } from './errors.ts';
import { keyRoutes } from './keys.ts';
import { presentWebhook } from './present.ts';
import { nativeRoutes } from './routes.ts';
import { uploadRoutes } from './uploads.ts';
import { webhookRoutes } from './webhooks.ts';

/** darkroom's own API (`/api/v1`): jobs, batches, events, keys and webhook logs, errors as RFC 9457 problem details. */
export const nativeDialect: Dialect = {
  name: 'native',
  prefix: '/api/v1',
  logComponent: 'api',
  errors: nativeErrors,
  // Every credential presented to darkroom's own API must be one of darkroom's, and valid.
  foreignTokens: false,
  async routes(scope, context) {
    await scope.register(keyRoutes, { keys: context.keys });
    await scope.register(nativeRoutes, { jobs: context.jobs, feed: context.feed, sseHeartbeatMs: context.sseHeartbeatMs });
    await scope.register(webhookRoutes, { jobs: context.jobs });
    await scope.register(uploadRoutes, { jobs: context.jobs });
  },
  webhookPayload: presentWebhook,
};
