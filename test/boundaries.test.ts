import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname });

/** The lint messages for `source` as if it were the file `filePath` of the repository. */
async function lint(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? []).map((message) => `${message.ruleId}: ${message.message}`);
}

const boundary = expect.stringMatching(/^boundaries\/dependencies: /);

describe('npm run lint enforces the layers', () => {
  it.each([
    ['the core importing the database', 'src/core/job.ts', "import '../db/client.ts';\n"],
    ['the core importing a provider', 'src/core/routing.ts', "import '../providers/mock/index.ts';\n"],
    ['a protocol importing the core', 'src/protocols/civitai/orchestration.ts', "import '../../core/job.ts';\n"],
    ['a dialect importing a provider', 'src/api/dialects/civitai/present.ts', "import '../../../providers/civitai/index.ts';\n"],
    ['a dialect importing the database', 'src/api/dialects/native/routes.ts', "import '../../../db/client.ts';\n"],
    ['a dialect importing another dialect', 'src/api/dialects/images/present.ts', "import '../runpod/present.ts';\n"],
    ['a provider importing a dialect', 'src/providers/runpod/index.ts', "import '../../api/dialects/runpod/present.ts';\n"],
    ['a provider importing the database', 'src/providers/mock/index.ts', "import '../../db/client.ts';\n"],
    ['the typed client importing server code', 'src/client/index.ts', "import '../core/job.ts';\n"],
    ['the typed client importing another protocol', 'src/client/index.ts', "import '../protocols/civitai/orchestration.ts';\n"],
    ['the database importing the worker (a cycle: the worker uses the job store)', 'src/db/client.ts', "import '../worker/worker.ts';\n"],
    ['the HTTP kit importing the dialect registry (a cycle: dialects use the kit)', 'src/api/http/docs.ts', "import '../dialects/registry.ts';\n"],
  ])('fails on %s', async (_what, filePath, source) => {
    expect(await lint(filePath, source)).toContainEqual(boundary);
  });

  it('fails when the core loads an adapter package', async () => {
    expect(await lint('src/core/ids.ts', "import 'sharp';\n")).toContainEqual(expect.stringMatching(/^no-restricted-imports: /));
  });

  it('passes the imports the layers allow', async () => {
    expect(await lint('src/api/dialects/civitai/present.ts', "import '../../../core/job.ts';\nimport '../../../protocols/civitai/orchestration.ts';\nimport '../../http/errors.ts';\n")).toEqual([]);
    expect(await lint('src/providers/civitai/index.ts', "import '../../core/job.ts';\nimport '../../protocols/civitai/orchestration.ts';\n")).toEqual([]);
    expect(await lint('src/client/index.ts', "import '../protocols/native/jobs.ts';\n")).toEqual([]);
  });
});
