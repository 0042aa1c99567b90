import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeDataDir } from './helpers/darkroom.ts';

/**
 * bin/darkroom.js runs the compiled dist/ only while it is current. The real script, in a stand-in
 * checkout whose two entries say which of them ran.
 */

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

const past = (seconds: number) => new Date(Date.now() - seconds * 1000);

function checkout(): string {
  const root = makeDataDir();
  roots.push(root);
  mkdirSync(join(root, 'bin'));
  copyFileSync('bin/darkroom.js', join(root, 'bin', 'darkroom.js'));
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }');
  symlinkSync(resolve('node_modules'), join(root, 'node_modules'));
  mkdirSync(join(root, 'src', 'main'), { recursive: true });
  writeFileSync(join(root, 'src', 'main', 'cli.ts'), "const ran: string = 'source';\nconsole.log(ran);\n");
  writeFileSync(join(root, 'src', 'main', 'other.ts'), 'export {};\n');
  mkdirSync(join(root, 'dist', 'main'), { recursive: true });
  writeFileSync(join(root, 'dist', 'main', 'cli.js'), "console.log('compiled');\n");
  for (const path of ['src/main/cli.ts', 'src/main/other.ts', 'src/main', 'src']) utimesSync(join(root, path), past(60), past(60));
  writeFileSync(join(root, 'dist', 'server-build.json'), '{}');
  utimesSync(join(root, 'dist', 'server-build.json'), past(30), past(30));
  return root;
}

function run(root: string): string {
  const result = spawnSync(process.execPath, [join(root, 'bin', 'darkroom.js')], { cwd: root, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim();
}

describe('bin/darkroom.js', () => {
  it('runs the build while it is newer than every source file', () => {
    expect(run(checkout())).toBe('compiled');
  });

  it('runs the TypeScript through tsx once a source file changed after the build', () => {
    const root = checkout();
    writeFileSync(join(root, 'src', 'main', 'other.ts'), 'export const edited = true;\n');
    expect(run(root)).toBe('source');
  });

  it('runs the TypeScript once a source file was deleted after the build', () => {
    const root = checkout();
    rmSync(join(root, 'src', 'main', 'other.ts'));
    expect(run(root)).toBe('source');
  });

  it('runs the TypeScript when there is no build', () => {
    const root = checkout();
    rmSync(join(root, 'dist', 'server-build.json'));
    expect(run(root)).toBe('source');
  });

  it('runs the build in an installation without sources (the container image)', () => {
    const root = checkout();
    rmSync(join(root, 'src'), { recursive: true });
    expect(run(root)).toBe('compiled');
  });
});
