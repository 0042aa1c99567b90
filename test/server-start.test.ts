import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDataDir } from './helpers/darkroom.ts';
import { spawnDarkroom, type DarkroomProcess } from './helpers/processes.ts';

/** The real `darkroom serve`, started twice on one port, as an operator would by mistake. */

const dataDirs: string[] = [];
let first: DarkroomProcess | undefined;

afterAll(async () => {
  await first?.stop();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = makeDataDir();
  dataDirs.push(dir);
  return dir;
}

describe('darkroom serve on a port already in use', () => {
  it('prints one line naming the port and exits 1, with no stack; the first server keeps serving', async () => {
    first = await spawnDarkroom('serve', { DATA_DIR: dataDir(), HOST: '127.0.0.1', MOCK_LATENCY_MS: '0' });
    const port = new URL(first.url ?? '').port;

    // Its own DATA_DIR: the same one would be refused for its lock before the port is tried.
    const second = spawn(process.execPath, ['bin/darkroom.js', 'serve'], {
      env: { ...process.env, PORT: port, HOST: '127.0.0.1', DATA_DIR: dataDir(), LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    second.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    second.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => second.once('close', resolve));

    expect(code, stderr).toBe(1);
    expect(stderr).toBe(`darkroom: port ${port} on 127.0.0.1 is in use; stop the other process or set PORT\n`);
    expect(stdout).toBe('');

    const health = await fetch(`${first.url}/health`);
    expect(health.status).toBe(200);
  }, 90_000);
});
