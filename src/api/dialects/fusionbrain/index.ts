import { DarkroomError } from '../../../core/errors.ts';
import type { Dialect } from '../../http/dialect.ts';
import { fusionBrainErrors } from './errors.ts';
import { fusionbrainRoutes } from './routes.ts';

/** The Fusion Brain (Kandinsky) API under `/key/api/v1`. */
export const fusionbrainDialect: Dialect = {
  name: 'fusionbrain',
  prefix: '/key/api/v1',
  logComponent: 'fusionbrain-api',
  errors: fusionBrainErrors,
  // Clients of the real service send their Fusion Brain key in X-Key.
  foreignTokens: true,
  async routes(scope, context) {
    await scope.register(fusionbrainRoutes, { jobs: context.jobs });
  },
  // Fusion Brain clients send `X-Key: Key <key>` (and X-Secret, not needed: a darkroom key is one secret).
  credential(request) {
    const header = request.headers['x-key'];
    if (typeof header !== 'string' || header.trim() === '') return undefined;
    const key = /^(?:Key\s+)?(\S+)\s*$/i.exec(header.trim());
    if (!key?.[1]) throw new DarkroomError(401, 'unauthorized', 'The X-Key header must be "Key <API key>"');
    return key[1];
  },
};
