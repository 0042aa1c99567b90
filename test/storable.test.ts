import { describe, expect, it } from 'vitest';
import { findUnstorable, MAX_STORED_DEPTH, printable, unstorableText } from '../src/core/storable.ts';

/** The core's check of what the database can hold, on its own. */

const nested = (depth: number): unknown => {
  let value: unknown = 'leaf';
  for (let level = 0; level < depth; level += 1) value = [value];
  return value;
};

describe('unstorableText', () => {
  it.each([
    ['a NUL', 'a\u0000b', /NUL/],
    ['a high surrogate at the end', 'kite \ud83d', /lone UTF-16 surrogate/],
    ['a low surrogate at the start', '\ude00 kite', /lone UTF-16 surrogate/],
    ['a pair in the wrong order', '\ude00\ud83d', /lone UTF-16 surrogate/],
    ['two high surrogates', '\ud83d\ud83d\ude00', /lone UTF-16 surrogate/],
  ])('refuses %s', (_label, text, reason) => {
    expect(unstorableText(text)).toMatch(reason);
  });

  it.each([
    ['plain text', 'a red kite over the dunes'],
    ['surrogate pairs (emoji, a skin tone)', '😀👍🏽 𝕂'],
    ['RTL marks and other controls', '\u202ekite\u202c\u200f\r\n\t\u0001'],
    ['U+FFFD and noncharacters', '\ufffd\uffff'],
    ['the empty string', ''],
  ])('accepts %s', (_label, text) => {
    expect(unstorableText(text)).toBeNull();
  });

  it('writes what it refuses as escapes', () => {
    expect(printable('a\u0000b\ud800c😀')).toBe('a\\u0000b\\ud800c😀');
  });
});

describe('findUnstorable', () => {
  it('names every string and key at any depth, in document order', () => {
    const value = { prompt: 'x\u0000', metadata: { a: { b: ['fine', '\udc00'] }, ['k\u0000']: 1 }, ok: 'fine' };
    expect(findUnstorable(value).map((part) => part.path)).toEqual([['prompt'], ['metadata', 'a', 'b', 1], ['metadata', 'k\\u0000']]);
    expect(findUnstorable(value)[2]?.message).toMatch(/^has a name that contains a NUL/);
  });

  it('accepts what the database can hold: numbers, booleans, null, nesting up to the limit', () => {
    expect(findUnstorable({ a: [1, 2.5, true, null, { b: 'c' }], deep: nested(MAX_STORED_DEPTH - 1) })).toEqual([]);
  });

  it('refuses nesting beyond the limit, once, without descending further', () => {
    expect(findUnstorable({ deep: nested(MAX_STORED_DEPTH + 5) })).toEqual([
      { path: ['deep', ...Array<number>(MAX_STORED_DEPTH - 1).fill(0)], message: `is nested more than ${MAX_STORED_DEPTH} levels deep` },
    ]);
  });

  it('walks 100,000 levels without exhausting the stack', () => {
    expect(() => findUnstorable(nested(100_000))).not.toThrow();
  });

  it('names at most 20 problems', () => {
    expect(findUnstorable(Array.from({ length: 50 }, () => '\u0000'))).toHaveLength(20);
  });
});
