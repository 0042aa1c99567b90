import type { Dialect } from '../../http/dialect.ts';
import { comfyuiErrors } from './errors.ts';
import { comfyuiRoutes } from './routes.ts';

/** ComfyUI's server API: `/prompt`, `/history`, `/queue`, `/view`, `/upload/…`, `/ws`, … and their `/api/` aliases. */
export const comfyuiDialect: Dialect = {
  name: 'comfyui',
  prefix: '',
  logComponent: 'comfyui-api',
  errors: comfyuiErrors,
  // ComfyUI itself takes no credentials; proxies in front of it often want a Bearer token of their own.
  foreignTokens: true,
  async routes(scope, context) {
    await scope.register(comfyuiRoutes, { jobs: context.jobs, feed: context.feed });
  },
};
