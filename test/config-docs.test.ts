import { describe, expect, it } from 'vitest';
import { checkConfigDocs, CONFIGURATION_DOC, readRepoText } from '../docs/check-config-docs.ts';

/** The repository's files, with `path` replaced by `edit` of its real text. */
function withEdited(path: string, edit: (text: string) => string) {
  return { readText: (file: string) => (file === path ? edit(readRepoText(file)) : readRepoText(file)) };
}

/** Drops the table row that documents `name`. */
const withoutRow = (name: string) => (text: string) => {
  const row = new RegExp(`^\\| \`${name}\` \\|.*\\n`, 'm');
  expect(text).toMatch(row);
  return text.replace(row, '');
};

describe('configuration documents', () => {
  it('agree with the code: docs/configuration.md and the provider pages list every variable once, with its default', () => {
    expect(checkConfigDocs()).toEqual([]);
  });

  it('name a variable missing from docs/configuration.md', () => {
    const problems = checkConfigDocs(withEdited(CONFIGURATION_DOC, withoutRow('SIGNED_URL_TTL')));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('SIGNED_URL_TTL');
  });

  it("name a variable missing from its provider page's Configuration table", () => {
    const problems = checkConfigDocs(withEdited('docs/providers/runpod.md', withoutRow('RUNPOD_INPUT_FORMAT')));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('RUNPOD_INPUT_FORMAT');
  });

  it('name a variable documented twice, and a default that differs from .env.example', () => {
    const duplicated = checkConfigDocs(
      withEdited(CONFIGURATION_DOC, (text) => `${text}\n| \`MOCK_FAILURE_RATE\` | \`0\` | 0–1 | listed here as well |\n`),
    );
    expect(duplicated).toEqual(['MOCK_FAILURE_RATE is documented twice: in docs/configuration.md and in docs/providers/mock.md']);

    const wrongDefault = checkConfigDocs(withEdited(CONFIGURATION_DOC, (text) => text.replace('| `PORT` | `3000` |', '| `PORT` | `8080` |')));
    expect(wrongDefault).toEqual([expect.stringContaining('PORT defaults to "8080"')]);
  });
});
