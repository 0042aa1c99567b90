/**
 * Checks that the configuration documents agree with the code:
 *
 * - the variable tables of docs/configuration.md and the "## Configuration" tables of the provider
 *   pages (docs/providers/*.md), taken together, list exactly the variables that loadConfig and the
 *   provider modules read, each once; docs/configuration.md links to every provider page that has such a table;
 * - .env.example lists the same variables, each once;
 * - every setting line of .env.example holds the default: loading all of them gives the same
 *   configuration as loading none;
 * - each documented default is the value .env.example shows.
 *
 * `checkConfigDocs()` returns the disagreements (none: an empty list); test/config-docs.test.ts runs it.
 * Run directly from the repository root, `npx tsx docs/check-config-docs.ts` prints OK or the
 * disagreements and exits 1 when there is any.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { loadClientConfig, loadConfig } from '../src/config/index.ts';

const root = new URL('..', import.meta.url);

/** The documents the check reads, relative to the repository root. */
export const CONFIGURATION_DOC = 'docs/configuration.md';
export const PROVIDER_DOCS_DIR = 'docs/providers';
const CONFIG_CODE = 'the code (loadConfig, loadClientConfig and the provider modules)';
const ENV_EXAMPLE = '.env.example';

/** Reads a file of the repository, by its path relative to the repository root. */
export function readRepoText(path: string): string {
  return readFileSync(new URL(path, root), 'utf8');
}

export interface CheckConfigDocsOptions {
  /** Reads a repository file by its root-relative path; tests hand in altered documents through it. */
  readText?: (path: string) => string;
  /** The provider pages, as root-relative paths; default: every docs/providers/*.md. */
  providerDocs?: string[];
}

interface DocumentedVariable {
  name: string;
  defaultCell: string;
  /** The document whose table lists it. */
  doc: string;
}

/** Rows of a variable table: "| `NAME` | default | …", the default cell `value` or starting with "unset". */
function variableRows(text: string, doc: string): DocumentedVariable[] {
  return [...text.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|/gm)].map((match) => ({
    name: match[1] as string,
    defaultCell: (match[2] as string).trim(),
    doc,
  }));
}

/** The text of the "## Configuration" section of a page (up to the next "## " heading), or undefined. */
function configurationSection(text: string): string | undefined {
  const start = text.search(/^## Configuration[ \t]*$/m);
  if (start === -1) return undefined;
  const next = text.slice(start + 1).search(/^## /m);
  return next === -1 ? text.slice(start) : text.slice(start, start + 1 + next);
}

/**
 * The variables the code reads: loadConfig run on an environment that records every name asked of
 * it, so the provider modules' own variables are found wherever their modules live.
 */
export function variablesInCode(): string[] {
  const names = new Set<string>();
  const recording = new Proxy({} as Record<string, string | undefined>, {
    get(_target, name) {
      if (typeof name === 'string') names.add(name);
      return undefined;
    },
  });
  loadConfig(recording);
  loadClientConfig(recording);
  return [...names];
}

function defaultProviderDocs(): string[] {
  return readdirSync(new URL(`${PROVIDER_DOCS_DIR}/`, root))
    .filter((file) => file.endsWith('.md'))
    .sort()
    .map((file) => `${PROVIDER_DOCS_DIR}/${file}`);
}

/** Every disagreement between the configuration documents and the code; empty when they agree. */
export function checkConfigDocs(options: CheckConfigDocsOptions = {}): string[] {
  const text = options.readText ?? readRepoText;
  const problems: string[] = [];

  const wanted = new Set(variablesInCode());

  // The documents: every variable row of docs/configuration.md, and of each provider page's
  // "## Configuration" section (a page without one documents no variable).
  const configurationDoc = text(CONFIGURATION_DOC);
  const documented = variableRows(configurationDoc, CONFIGURATION_DOC);
  for (const doc of options.providerDocs ?? defaultProviderDocs()) {
    const section = configurationSection(text(doc));
    if (section === undefined) continue;
    const rows = variableRows(section, doc);
    if (rows.length === 0) problems.push(`${doc} has a "## Configuration" section without variable rows`);
    documented.push(...rows);
    const link = doc.slice('docs/'.length);
    if (rows.length > 0 && !configurationDoc.includes(`](${link}`)) problems.push(`${CONFIGURATION_DOC} does not link to ${link}, which documents ${rows.map((row) => row.name).join(', ')}`);
  }

  const firstDoc = new Map<string, string>();
  for (const row of documented) {
    const earlier = firstDoc.get(row.name);
    if (earlier !== undefined) problems.push(`${row.name} is documented twice: in ${earlier} and in ${row.doc}`);
    else firstDoc.set(row.name, row.doc);
    if (!wanted.has(row.name)) problems.push(`${row.doc} lists ${row.name}, which ${CONFIG_CODE} does not read`);
  }
  for (const name of wanted) {
    if (!firstDoc.has(name)) problems.push(`no document lists ${name}: add it to ${CONFIGURATION_DOC}, or to its provider's ${PROVIDER_DOCS_DIR}/<name>.md under "## Configuration"`);
  }

  // .env.example: "# NAME=value" setting lines (prose comments never start with NAME=).
  const example = text(ENV_EXAMPLE);
  const exampleLines = [...example.matchAll(/^# ?([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((match) => ({
    name: match[1] as string,
    value: (match[2] as string).trim(),
  }));
  for (const line of example.split('\n')) {
    if (/^[A-Z][A-Z0-9_]*=/.test(line)) problems.push(`${ENV_EXAMPLE} sets ${line.split('=')[0]} uncommented; every line must be a comment`);
  }
  const seenInExample = new Set<string>();
  for (const { name } of exampleLines) {
    if (seenInExample.has(name)) problems.push(`${ENV_EXAMPLE} lists ${name} twice`);
    seenInExample.add(name);
    if (!wanted.has(name)) problems.push(`${ENV_EXAMPLE} lists ${name}, which ${CONFIG_CODE} does not read`);
  }
  for (const name of wanted) if (!seenInExample.has(name)) problems.push(`${ENV_EXAMPLE} does not list ${name}`);

  // Uncommenting every setting line must change nothing.
  const asEnv = Object.fromEntries(exampleLines.map((line) => [line.name, line.value]));
  try {
    const defaults = loadConfig({});
    for (const line of exampleLines) {
      const one = loadConfig({ [line.name]: line.value });
      if (!isDeepStrictEqual(one, defaults)) problems.push(`${ENV_EXAMPLE}: ${line.name}=${line.value} is not the default`);
    }
    if (!isDeepStrictEqual(loadConfig(asEnv), defaults)) problems.push(`${ENV_EXAMPLE}: its values together are not the defaults`);
  } catch (error) {
    problems.push(`${ENV_EXAMPLE}'s values do not load: ${error instanceof Error ? error.message : String(error)}`);
  }

  // A documented default is the first `code` span of its cell, or "unset".
  for (const row of documented) {
    const shown = /^unset\b/.test(row.defaultCell) ? '' : /`([^`]*)`/.exec(row.defaultCell)?.[1];
    const value = asEnv[row.name];
    if (value === undefined) continue;
    if (shown === undefined) problems.push(`${row.doc}: the default of ${row.name} ("${row.defaultCell}") is neither \`value\` nor unset`);
    else if (shown !== value) problems.push(`${row.doc} says ${row.name} defaults to "${shown || 'unset'}", ${ENV_EXAMPLE} shows "${value || 'unset'}"`);
  }

  return problems;
}

const runDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (runDirectly) {
  const problems = checkConfigDocs();
  if (problems.length > 0) {
    console.error(`Configuration documents disagree with the code:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    process.exitCode = 1;
  } else {
    const count = new Set(variablesInCode()).size;
    console.log(`OK: ${count} variables; ${CONFIGURATION_DOC} with ${PROVIDER_DOCS_DIR}/*.md, and ${ENV_EXAMPLE}, list each once, with the defaults the code applies.`);
  }
}
