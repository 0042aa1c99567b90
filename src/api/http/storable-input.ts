import type { FastifyInstance } from 'fastify';
import { DarkroomError, type FieldProblem } from '../../core/errors.ts';
import { findUnstorable, pointerOf, printable, unstorableText } from '../../core/storable.ts';

function problemsIn(values: unknown, part: 'params' | 'querystring'): FieldProblem[] {
  if (typeof values !== 'object' || values === null) return [];
  return Object.entries(values).flatMap(([name, value]) => {
    const texts = Array.isArray(value) ? value : [value];
    const reason = unstorableText(name) ?? texts.map((text) => (typeof text === 'string' ? unstorableText(text) : null)).find((found) => found !== null);
    return reason ? [{ field: printable(name), in: part, message: reason }] : [];
  });
}

/**
 * Refuses, on every route, path parameters and query values holding text no database column can
 * hold (a NUL, a lone surrogate): they name things (endpoints, AIR prefixes, providers) that are
 * looked up or stored, and the database would fail the query. A 400 in the route's own error
 * format, before its schema and handler run.
 */
export function refuseUnstorableUrlText(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    // An unknown path is a 404 (or 405) whatever it holds.
    if (request.is404) return;
    const problems = [...problemsIn(request.params, 'params'), ...problemsIn(request.query, 'querystring')];
    const first = problems[0];
    if (first) throw new DarkroomError(400, 'validation_failed', `The request is invalid: ${first.field} ${first.message}`, problems);
  });
}

/**
 * A 400 naming every part of a request body the database cannot store, by its place in the body
 * (`prompts/3`), or null. The core refuses such jobs whatever the dialect, naming its own fields; a
 * dialect whose fields are named otherwise checks the body first, so its clients read their own names.
 */
export function unstorableBody(body: unknown): DarkroomError | null {
  const problems = findUnstorable(body).map((part) => ({ field: pointerOf(part.path).slice(1), message: part.message }));
  const first = problems[0];
  if (!first) return null;
  return new DarkroomError(400, 'validation_failed', `${first.field.replaceAll('/', '.')} ${first.message}`, problems);
}
