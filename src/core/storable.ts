/**
 * What the database can store. Postgres refuses U+0000 in `text` and in `jsonb` (the `\u0000`
 * escape), and UTF-8 has no encoding of a lone UTF-16 surrogate: `jsonb` refuses its escape, and a
 * `text` value would be stored with U+FFFD in its place. Values are also bounded in depth, so that
 * serialising them (JSON.stringify and the database's parser both recurse) cannot exhaust a stack.
 */

/** Deepest nesting of objects and arrays kept in a stored value. */
export const MAX_STORED_DEPTH = 100;
/** At most this many problems are named; a value with more has more of the same. */
const MAX_PROBLEMS = 20;

// A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
// eslint-disable-next-line no-control-regex -- finding U+0000 is the point
const UNSTORABLE_ALL = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSTORABLE = new RegExp(UNSTORABLE_ALL.source);

/** Why `text` cannot be stored, in words for people; null when it can. */
export function unstorableText(text: string): string | null {
  const found = UNSTORABLE.exec(text);
  if (!found) return null;
  return found[0] === '\u0000' ? 'contains a NUL character (U+0000), which cannot be stored' : 'contains a lone UTF-16 surrogate (not valid Unicode), which cannot be stored';
}

/** `text` with each character that cannot be stored written as its `\uXXXX` escape: fit for a message or a field name. */
export function printable(text: string): string {
  return text.replace(UNSTORABLE_ALL, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Path steps as a JSON pointer (`/prompts/3`; `~` and `/` escaped): how the core names a field. */
export function pointerOf(steps: readonly (string | number)[]): string {
  return steps.map((step) => `/${String(step).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

export interface UnstorablePart {
  /** Steps from the checked value to the part (object keys and array indexes); empty for the value itself. */
  path: (string | number)[];
  message: string;
}

/**
 * Every part of `value` the database cannot store: strings and object keys at any depth holding
 * a NUL or a lone surrogate, and nesting deeper than MAX_STORED_DEPTH (at most MAX_PROBLEMS of
 * them, in document order). Walks without recursion, so no input can exhaust the stack.
 */
export function findUnstorable(value: unknown): UnstorablePart[] {
  type Step = { value: unknown; path: (string | number)[] } | { problem: UnstorablePart };
  const problems: UnstorablePart[] = [];
  const pending: Step[] = [{ value, path: [] }];
  while (pending.length > 0 && problems.length < MAX_PROBLEMS) {
    const step = pending.pop() as Step;
    if ('problem' in step) {
      problems.push(step.problem);
      continue;
    }
    const { value: current, path } = step;
    if (typeof current === 'string') {
      const reason = unstorableText(current);
      if (reason) problems.push({ path, message: reason });
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (path.length >= MAX_STORED_DEPTH) {
      problems.push({ path, message: `is nested more than ${MAX_STORED_DEPTH} levels deep` });
      continue;
    }
    const children: Step[] = Array.isArray(current)
      ? current.map((item, index) => ({ value: item, path: [...path, index] }))
      : Object.entries(current).map(([key, item]) => {
          const reason = unstorableText(key);
          return reason ? { problem: { path: [...path, printable(key)], message: `has a name that ${reason}` } } : { value: item, path: [...path, key] };
        });
    // Reversed onto the stack, so that problems come out in document order.
    for (let index = children.length - 1; index >= 0; index -= 1) pending.push(children[index] as Step);
  }
  return problems;
}
