import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';
import { spawnDarkroom, type DarkroomProcess } from './helpers/processes.ts';

/**
 * The Civitai orchestrator mock's catalogue, `/v2/resources`, as its README shows it: create, read by
 * AIR, replace, patch, delete, and a second page of ten. Exactly those requests, over HTTP, against
 * darkroom with AUTH=off (as the mock had no auth), and against the default configuration
 * (AUTH=optional) with an admin key made by `darkroom keys create` while the server runs.
 */

const SDXL = 'urn:air:sdxl:checkpoint:civitai:101055@128078';
const FLUX = 'urn:air:flux1:checkpoint:civitai:618692@691639';
const FLUX_LORA = 'urn:air:flux1:lora:civitai:233497@937698';
const BIN = fileURLToPath(new URL('../bin/darkroom.js', import.meta.url));

/** `sample.json` of the README's create: a minimal document, all the mock asked for. */
const sample = { air: SDXL };
/** `sample2.json` of its replace: a whole ResourceInfo for the FLUX checkpoint. */
const sample2 = {
  air: FLUX,
  size: 23802932552,
  hashes: { SHA256: '4610115BB0C89560703C892C59AC2742FA821E60EF5871B33493BA544683ABD7' },
  downloadUrls: ['https://civitai.com/api/download/models/691639'],
  modelName: 'FLUX',
  versionName: 'Dev',
  canGenerate: true,
  fileFormat: 'safeTensor',
};
/** The LoRA the README patches: a real ResourceInfo of the service. */
const fluxLora = JSON.parse(readFileSync(new URL('./fixtures/civitai/example-air1.json', import.meta.url), 'utf8')) as Record<string, unknown>;
/** Minimal documents with fields of their own (kept as sent), so that a page of ten has a second one. */
const others = Array.from({ length: 10 }, (_, index) => ({ air: `urn:air:sd1:lora:civitai:${1000 + index}@${2000 + index}`, note: 'kept as sent', tags: ['origin', index] }));

interface Answer {
  status: number;
  contentType: string | null;
  // Each assertion narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** One curl of the README: the path as typed (the AIR raw, `:` and `@` included), JSON in, JSON out. */
async function curl(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type'), body: text ? JSON.parse(text) : undefined };
}

/** The README's examples in its order; `writer` is what the writes send (an admin key, or nothing under AUTH=off). */
async function runReadmeExamples(base: string, writer: Record<string, string>): Promise<void> {
  // Создать: the minimal sample, then the rest of the catalogue the other examples name.
  const created = await curl(base, 'POST', '/v2/resources', sample, writer);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect(created.body).toEqual(sample);
  for (const document of [{ air: FLUX, modelName: 'FLUX.1' }, fluxLora, ...others]) {
    expect((await curl(base, 'POST', '/v2/resources', document, writer)).status).toBe(201);
  }

  // Получить по air
  const read = await curl(base, 'GET', `/v2/resources/${SDXL}`);
  expect([read.status, read.body]).toEqual([200, sample]);

  // Обновить полностью: the document becomes sample2, nothing of the old one left.
  const replaced = await curl(base, 'PUT', `/v2/resources/${FLUX}`, sample2, writer);
  expect([replaced.status, replaced.body]).toEqual([200, sample2]);
  expect((await curl(base, 'GET', `/v2/resources/${FLUX}`)).body).toEqual(sample2);

  // Частично обновить
  const patched = await curl(base, 'PATCH', `/v2/resources/${FLUX_LORA}`, { modelName: 'New name' }, writer);
  expect([patched.status, patched.body]).toEqual([200, { ...fluxLora, modelName: 'New name' }]);

  // Удалить
  expect((await curl(base, 'DELETE', `/v2/resources/${SDXL}`, undefined, writer)).status).toBe(204);
  const gone = await curl(base, 'GET', `/v2/resources/${SDXL}`);
  expect([gone.status, gone.body.detail]).toEqual([404, `Resource ${SDXL} does not exist.`]);

  // Список (вторая страница по 10 элементов)
  const page = await curl(base, 'GET', '/v2/resources?limit=10&page=2');
  expect(page.status).toBe(200);
  expect(page.body).toMatchObject({ page: 2, limit: 10, total: 12 });
  expect(page.body.items).toHaveLength(2);
  // With the first page: every document once, each as it was sent or last changed.
  const first = await curl(base, 'GET', '/v2/resources?limit=10&page=1');
  const byAir = (documents: Record<string, unknown>[]) => [...documents].sort((a, b) => (String(a.air) < String(b.air) ? -1 : 1));
  expect(byAir([...first.body.items, ...page.body.items])).toEqual(byAir([sample2, { ...fluxLora, modelName: 'New name' }, ...others]));
}

describe('the README of the Civitai mock, AUTH=off', () => {
  let dr: TestDarkroom;
  beforeAll(async () => {
    dr = await startDarkroom({ AUTH: 'off', WORKER_CONCURRENCY: '0' });
  });
  afterAll(() => dr?.close({ removeData: true }));

  it('runs every /v2/resources example as written', async () => {
    await runReadmeExamples(dr.url, {});
  });
});

describe('the README of the Civitai mock, default configuration (AUTH=optional)', () => {
  let server: DarkroomProcess;
  let env: Record<string, string>;
  let base: string;
  beforeAll(async () => {
    const spare = createServer();
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
    const { port } = spare.address() as { port: number };
    await new Promise((resolve) => spare.close(resolve));
    base = `http://127.0.0.1:${port}`;
    // What one .env gives the server and the CLI alike: nothing but where it runs. AUTH is left at its
    // default and there is no ADMIN_API_KEY: the CLI uses the local admin key the server keeps in DATA_DIR.
    env = { DATA_DIR: makeDataDir(), HOST: '127.0.0.1', PORT: String(port), ADMIN_API_KEY: '', DARKROOM_URL: '', DARKROOM_API_KEY: '', PUBLIC_URL: '' };
    server = await spawnDarkroom('serve', { ...env, WORKER_CONCURRENCY: '0' });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('runs every example with an admin key made by `darkroom keys create` while the server runs; without one a write is a Civitai 403', async () => {
    const refused = await curl(base, 'POST', '/v2/resources', sample);
    expect([refused.status, refused.contentType]).toEqual([403, expect.stringMatching(/^application\/problem\+json/)]);
    expect(refused.body).toMatchObject({ type: 'https://tools.ietf.org/html/rfc9110#section-15.5.4', title: 'Forbidden', status: 403, traceId: expect.any(String) });

    const created = await promisify(execFile)('node', [BIN, 'keys', 'create', '--name', 'catalogue', '--admin', '--json'], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' } });
    const { key } = JSON.parse(created.stdout) as { key: string };
    expect(key).toMatch(/^dk_/);
    await runReadmeExamples(base, { authorization: `Bearer ${key}` });
  }, 60_000);
});
