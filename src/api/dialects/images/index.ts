import type { Dialect } from '../../http/dialect.ts';
import { imageErrors } from './errors.ts';
import { imagesRoutes } from './routes.ts';

/** The Fusion-service origin's own API (NestJS) under `/image`. */
export const imagesDialect: Dialect = {
  name: 'images',
  prefix: '/image',
  logComponent: 'image-api',
  errors: imageErrors,
  // The origin app's clients send that app's own tokens.
  foreignTokens: true,
  async routes(scope, context) {
    await scope.register(imagesRoutes, { jobs: context.jobs });
  },
};
