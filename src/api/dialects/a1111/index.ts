import { DarkroomError } from '../../../core/errors.ts';
import type { Dialect } from '../../http/dialect.ts';
import { a1111Errors } from './errors.ts';
import { a1111Routes } from './routes.ts';

/** AUTOMATIC1111's (and Forge's) web API: `/sdapi/v1/…` and `/internal/progress`. */
export const a1111Dialect: Dialect = {
  name: 'a1111',
  prefix: '',
  logComponent: 'a1111-api',
  errors: a1111Errors,
  // Clients of a webui started with --api-auth send that server's user and password.
  foreignTokens: true,
  async routes(scope, context) {
    await scope.register(a1111Routes, { jobs: context.jobs, resources: context.resources });
  },
  // The webui's --api-auth is HTTP Basic: the password carries the darkroom key (the user name is free).
  credential(request) {
    const header = request.headers.authorization?.trim();
    if (!header || !/^Basic\s/i.test(header)) return undefined;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const secret = colon === -1 ? '' : decoded.slice(colon + 1);
    if (secret === '') throw new DarkroomError(401, 'unauthorized', 'Incorrect username or password');
    return secret;
  },
};
