import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { persistentSecret } from '../src/config/secret-file.ts';
import { makeDataDir } from './helpers/darkroom.ts';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const moduleUrl = new URL('../src/config/secret-file.ts', import.meta.url).href;

describe('a secret kept in DATA_DIR', () => {
  it('is made once and read back as it was', () => {
    const dir = makeDataDir();
    dirs.push(dir);
    const first = persistentSecret(dir, 'x.key', () => 'made-once');
    expect(first).toBe('made-once');
    expect(persistentSecret(dir, 'x.key', () => 'made-twice')).toBe('made-once');
    expect(readdirSync(dir)).toEqual(['x.key']);
  });

  it('is the same for processes that start together on one DATA_DIR, and never read half-written', async () => {
    const dir = makeDataDir();
    dirs.push(dir);
    const code = `const { persistentSecret } = await import(${JSON.stringify(moduleUrl)});
      const { randomBytes } = await import('node:crypto');
      process.stdout.write(persistentSecret(${JSON.stringify(dir)}, 'race.key', () => randomBytes(32).toString('hex')));`;
    const outputs = await Promise.all(
      Array.from({ length: 6 }, () => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code]).then(({ stdout }) => stdout)),
    );
    expect(outputs[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(outputs).size).toBe(1);
    expect(readFileSync(`${dir}/race.key`, 'utf8')).toBe(outputs[0]);
    expect(readdirSync(dir)).toEqual(['race.key']);
  });

  it('refuses an empty file with a sentence saying what to do', () => {
    const dir = makeDataDir();
    dirs.push(dir);
    writeFileSync(`${dir}/empty.key`, '');
    expect(() => persistentSecret(dir, 'empty.key', () => 'new')).toThrow(/empty\.key is empty: delete it/);
  });
});
