/**
 * Checks that the configuration documents agree with the code:
 *
 * - README.md's configuration table and .env.example list exactly the variables that
 *   src/config/index.ts reads, each once;
 * - every setting line of .env.example holds the default: loading all of them gives the same
 *   configuration as loading none;
 * - the README table's default for each variable is the value .env.example shows.
 *
 * Run from the repository root: `npx tsx docs/check-config-docs.ts`. Exits 1 and lists every
 * disagreement when there is any.
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { loadConfig } from '../src/config/index.ts';

const root = new URL('..', import.meta.url);
const text = (path: string) => readFileSync(new URL(path, root), 'utf8');
const problems: string[] = [];

// Every variable is read through one of loadConfig's helpers, with its name as the first argument.
const code = text('src/config/index.ts');
const inCode = [...code.matchAll(/\b(?:read|integer|oneOf|boolean|url|perProvider|rateLimit)\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((match) => match[1] as string);

// README: the rows of the tables under "## Configuration" whose first cell is a variable name.
const readme = text('README.md');
const start = readme.indexOf('\n## Configuration');
const end = readme.indexOf('\n## ', start + 1);
if (start === -1) problems.push('README.md has no "## Configuration" section');
const section = readme.slice(start, end === -1 ? undefined : end);
const readmeRows = [...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|/gm)].map((match) => ({
  name: match[1] as string,
  defaultCell: (match[2] as string).trim(),
}));

// .env.example: "# NAME=value" setting lines (prose comments never start with NAME=).
const example = text('.env.example');
const exampleLines = [...example.matchAll(/^# ?([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((match) => ({
  name: match[1] as string,
  value: (match[2] as string).trim(),
}));
for (const line of example.split('\n')) {
  if (/^[A-Z][A-Z0-9_]*=/.test(line)) problems.push(`.env.example sets ${line.split('=')[0]} uncommented; every line must be a comment`);
}

function compare(what: string, names: string[]): void {
  const wanted = new Set(inCode);
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) problems.push(`${what} lists ${name} twice`);
    seen.add(name);
    if (!wanted.has(name)) problems.push(`${what} lists ${name}, which src/config/index.ts does not read`);
  }
  for (const name of wanted) if (!seen.has(name)) problems.push(`${what} does not list ${name}`);
}

compare('README.md', readmeRows.map((row) => row.name));
compare('.env.example', exampleLines.map((line) => line.name));

// Uncommenting every setting line must change nothing.
const asEnv = Object.fromEntries(exampleLines.map((line) => [line.name, line.value]));
try {
  const defaults = loadConfig({});
  for (const line of exampleLines) {
    const one = loadConfig({ [line.name]: line.value });
    if (!isDeepStrictEqual(one, defaults)) problems.push(`.env.example: ${line.name}=${line.value} is not the default`);
  }
  if (!isDeepStrictEqual(loadConfig(asEnv), defaults)) problems.push('.env.example: its values together are not the defaults');
} catch (error) {
  problems.push(`.env.example's values do not load: ${error instanceof Error ? error.message : String(error)}`);
}

// The README's default is the first `code` span of its cell, or "unset".
for (const row of readmeRows) {
  const shown = /^unset\b/.test(row.defaultCell) ? '' : /`([^`]*)`/.exec(row.defaultCell)?.[1];
  const value = asEnv[row.name];
  if (value === undefined) continue;
  if (shown === undefined) problems.push(`README.md: the default of ${row.name} ("${row.defaultCell}") is neither \`value\` nor unset`);
  else if (shown !== value) problems.push(`README.md says ${row.name} defaults to "${shown || 'unset'}", .env.example shows "${value || 'unset'}"`);
}

if (problems.length > 0) {
  console.error(`Configuration documents disagree with the code:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  process.exitCode = 1;
} else {
  console.log(`OK: ${inCode.length} variables; README.md and .env.example list each once, with the defaults the code applies.`);
}
