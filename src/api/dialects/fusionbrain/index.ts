import type { Dialect } from '../../http/dialect.ts';
import { fusionBrainErrors } from './errors.ts';
import { fusionbrainRoutes } from './routes.ts';

/** The Fusion Brain (Kandinsky) API under `/key/api/v1`. */
export const fusionbrainDialect: Dialect = {
  name: 'fusionbrain',
  prefix: '/key/api/v1',
  logComponent: 'fusionbrain-api',
  errors: fusionBrainErrors,
  async routes(scope, context) {
    await scope.register(fusionbrainRoutes, { jobs: context.jobs });
  },
};
