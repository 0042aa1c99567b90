import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { createDarkroom, type Darkroom, type DarkroomOverrides } from '../../src/main/compose.ts';

export interface TestDarkroom {
  darkroom: Darkroom;
  url: string;
  dataDir: string;
  /** fetch against this darkroom, JSON in and out. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** Polls until the job has one of `statuses` (default: any terminal status). */
  waitForJob(id: string, statuses?: string[], timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Stops the process-level pieces; keeps DATA_DIR unless `removeData` (an in-memory database goes either way). */
  close(options?: { removeData?: boolean }): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  // Tests inspect arbitrary JSON shapes; each assertion narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export function makeDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'darkroom-test-'));
}

let template: Blob | undefined;

/** The migrated PGlite data directory test/global-setup.ts made for this run, if it ran. */
export function pgliteTemplate(): Blob | undefined {
  const path = inject('pgliteTemplate');
  if (path && !template) template = new Blob([readFileSync(path)]);
  return template;
}

export interface StartOptions extends DarkroomOverrides {
  /** An existing DATA_DIR (a restart, or one a child process uses): the database is kept there, on disk. */
  dataDir?: string;
  /**
   * Keep the database on disk in DATA_DIR, for a test that starts darkroom again on `dataDir`
   * afterwards. Otherwise (and without `dataDir`) it lives in memory and goes with the process.
   */
  persist?: boolean;
  apiKey?: string;
}

/**
 * A real darkroom on an ephemeral port, with fast retries and an instant mock unless `env` says otherwise.
 * Its embedded database starts from the migrated template (no initdb, nothing to migrate), in memory
 * unless `dataDir` or `persist` asks for it on disk; files and secrets are always in DATA_DIR.
 */
export async function startDarkroom(env: Record<string, string> = {}, overrides: StartOptions = {}): Promise<TestDarkroom> {
  const dataDir = overrides.dataDir ?? makeDataDir();
  const onDisk = overrides.dataDir !== undefined || overrides.persist === true;
  const database = overrides.database ?? (onDisk ? { template: pgliteTemplate() } : { dataDir: null, template: pgliteTemplate() });
  const config = loadConfig({
    PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    MOCK_LATENCY_MS: '0',
    RETRY_BASE_DELAY_MS: '5',
    RETRY_MAX_DELAY_MS: '50',
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
  const darkroom = await createDarkroom(config, { ...overrides, database });
  const url = await darkroom.start();

  // Sent unless a call brings its own credential (or says none with an empty authorization).
  const credential: Record<string, string> = overrides.apiKey ? { authorization: `Bearer ${overrides.apiKey}` } : {};
  const api: TestDarkroom['api'] = async (method, path, body, headers = {}) => {
    const own = Object.keys(headers).some((name) => ['authorization', 'x-key'].includes(name.toLowerCase()));
    const init: RequestInit = { method, headers: own ? { ...headers } : { ...credential, ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${url}${path}`, { ...init, redirect: 'manual' });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: the test sees the text.
    }
    return { status: response.status, headers: response.headers, body: parsed };
  };

  const terminal = ['succeeded', 'failed', 'cancelled', 'expired'];
  return {
    darkroom,
    url,
    dataDir,
    api,
    async waitForJob(id, statuses = terminal, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const { body } = await api('GET', `/api/v1/jobs/${id}`);
        if (statuses.includes(body.status)) return body;
        if (Date.now() > until) throw new Error(`job ${id} is still ${body.status} after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close(options = {}) {
      await darkroom.close();
      if (options.removeData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
