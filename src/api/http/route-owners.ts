import type { ErrorFormat } from './errors.ts';

/**
 * Which dialect a path belongs to, for the answers given outside any route's scope: a known path
 * asked with another method (405), and paths the router refuses before routing (a %-escape that is
 * not UTF-8, a segment longer than MAX_PARAM_LENGTH). Those reach the app's root handlers, which
 * answer in the owning dialect's format.
 */
export interface RouteOwners {
  /** Records a route of a dialect: its URL pattern as Fastify has it (prefix included). */
  addRoute(url: string, format: ErrorFormat): void;
  /** Records a dialect that answers every unknown path under `prefix` in its own format. */
  addPrefix(prefix: string, format: ErrorFormat): void;
  /**
   * The format of the dialect with a route matching `path` (any method); else of the one owning the
   * longest prefix of it; undefined when no dialect owns it.
   */
  formatOf(path: string): ErrorFormat | undefined;
}

/** One segment of a route URL: a fixed text, a parameter (with its pattern, if any), or the final `*`. */
export type Segment = { kind: 'static'; text: string } | { kind: 'param'; pattern: RegExp | null } | { kind: 'rest' };

/** A route URL's segments, read as find-my-way reads them: `:name`, `:name(regex)`, a final `*`. */
export function segmentsOf(url: string): Segment[] {
  return splitSegments(url)
    .slice(1)
    .map((text): Segment => {
      if (text === '*') return { kind: 'rest' };
      if (!text.startsWith(':')) return { kind: 'static', text };
      const open = text.indexOf('(');
      if (open === -1) return { kind: 'param', pattern: null };
      const inner = text.slice(open + 1, text.lastIndexOf(')')).replace(/^\^/, '').replace(/\$$/, '');
      return { kind: 'param', pattern: new RegExp(`^(?:${inner})$`) };
    });
}

/** The URL split at each `/` that is not inside a parameter's pattern (`:air(^[^/]*:.*$)` is one segment). */
function splitSegments(url: string): string[] {
  const segments = [''];
  let depth = 0;
  let escaped = false;
  for (const character of url) {
    if (character === '/' && depth === 0) {
      segments.push('');
      continue;
    }
    if (!escaped && character === '(') depth += 1;
    if (!escaped && character === ')') depth = Math.max(0, depth - 1);
    escaped = !escaped && character === '\\';
    segments[segments.length - 1] += character;
  }
  return segments;
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function matches(route: Segment[], path: string[]): boolean {
  for (const [index, segment] of route.entries()) {
    if (segment.kind === 'rest') return true;
    const given = path[index];
    if (given === undefined) return false;
    if (segment.kind === 'static' ? segment.text !== given : segment.pattern !== null && !segment.pattern.test(decoded(given))) return false;
  }
  return route.length === path.length;
}

export function makeRouteOwners(): RouteOwners {
  const routes: { segments: Segment[]; format: ErrorFormat }[] = [];
  const prefixes: { prefix: string; format: ErrorFormat }[] = [];
  return {
    addRoute(url, format) {
      routes.push({ segments: segmentsOf(url), format });
    },
    addPrefix(prefix, format) {
      prefixes.push({ prefix, format });
    },
    formatOf(path) {
      const segments = path.split('/').slice(1);
      const route = routes.find((candidate) => matches(candidate.segments, segments));
      if (route) return route.format;
      const owning = prefixes.filter(({ prefix }) => path === prefix || path.startsWith(`${prefix}/`));
      return owning.sort((a, b) => b.prefix.length - a.prefix.length)[0]?.format;
    },
  };
}
