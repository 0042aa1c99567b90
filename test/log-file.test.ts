import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnDarkroom } from './helpers/processes.ts';

describe('LOG_FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'darkroom-logs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the stdout lines to a file as well, rotated by size, keeping LOG_FILE_KEEP old files and a current.log link', async () => {
    const logs = join(dir, 'logs');
    const server = await spawnDarkroom('serve', { DATA_DIR: join(dir, 'data'), LOG_FILE: join(logs, 'app.log'), LOG_FILE_ROTATE: '2k', LOG_FILE_KEEP: '2' });
    for (let index = 0; index < 40; index += 1) expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const created = await fetch(`${server.url}/key/api/v1/pipelines`);
    expect(created.status).toBe(200);
    expect(await server.stop()).toBe(0);

    const files = readdirSync(logs).filter((name) => name.endsWith('.log') && name !== 'current.log');
    // Two kept and the active one: the oldest were removed as the size rolled them over.
    expect(files.length).toBe(3);
    expect(existsSync(join(logs, 'current.log'))).toBe(true);
    expect(files).toContain(readlinkSync(join(logs, 'current.log')).split('/').pop());
    const lines = files.flatMap((name) => readFileSync(join(logs, name), 'utf8').split('\n').filter(Boolean)).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.every((line) => line.service === 'darkroom')).toBe(true);
    // Each dialect's lines name it, so grep finds one API's traffic; the last lines are the same as stdout's.
    expect(lines.some((line) => line.component === 'fusionbrain-api' && line.status === 200)).toBe(true);
    const printed = server.output().split('\n').filter((line) => line.startsWith('{'));
    expect(lines.map((line) => line.msg)).toContain(JSON.parse(printed.at(-1) as string).msg);
  });
});
