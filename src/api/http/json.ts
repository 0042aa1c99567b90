import type { FastifyInstance } from 'fastify';

/**
 * Deepest nesting of arrays and objects a JSON body may have (System.Text.Json's default, which the
 * Civitai orchestrator answers with): far beyond any request darkroom takes, and well within what
 * serialising and storing a value can handle.
 */
export const MAX_JSON_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A body darkroom does not read as JSON: normalised as `malformed_json` (400), `message` as the cause. */
function malformed(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
}

/** Whether JSON text nests arrays and objects deeper than `limit` (brackets inside strings do not count). */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c) index += 1;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x5b || code === 0x7b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (code === 0x5d || code === 0x7d) {
      depth -= 1;
    }
  }
  return false;
}

/**
 * A JSON body's value: undefined for an empty one (`curl -X POST -H 'content-type: application/json'`
 * means "no body", not malformed JSON). Refuses bytes that are not UTF-8 (rather than reading them
 * as U+FFFD) and nesting deeper than MAX_JSON_DEPTH, before parsing.
 */
export function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw malformed('it is not valid UTF-8');
  }
  if (text.trim() === '') return undefined;
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw malformed(`it nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw malformed((error as Error).message);
  }
}

/** Reads bodies of `contentType` in `scope` with parseJsonBody. */
export function addJsonParser(scope: FastifyInstance, contentType: string | RegExp): void {
  scope.addContentTypeParser(contentType, { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}
