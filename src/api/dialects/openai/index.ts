import type { Dialect } from '../../http/dialect.ts';
import { openaiErrors } from './errors.ts';
import { openaiRoutes } from './routes.ts';

/** The OpenAI Images API (`/v1/images/*`) and its model list (`/v1/models`). */
export const openaiDialect: Dialect = {
  name: 'openai',
  prefix: '/v1',
  logComponent: 'openai-api',
  errors: openaiErrors,
  // Apps written for OpenAI send their OpenAI key (`sk-…`) as a Bearer token.
  foreignTokens: true,
  async routes(scope, context) {
    await scope.register(openaiRoutes, { jobs: context.jobs, waitMs: context.openaiWaitMs, sseHeartbeatMs: context.sseHeartbeatMs });
  },
};
