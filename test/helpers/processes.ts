import { spawn, type ChildProcess } from 'node:child_process';

export interface DarkroomProcess {
  child: ChildProcess;
  /** The API's address; undefined for a worker, which serves no HTTP. */
  url: string | undefined;
  /** Everything the process printed so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code (or the signal's name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts `darkroom <command>` as a child process and resolves once it says it is running. */
export async function spawnDarkroom(command: 'serve' | 'api' | 'worker', env: Record<string, string>): Promise<DarkroomProcess> {
  const child = spawn(process.execPath, ['bin/darkroom.js', command], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let printed = '';
  child.stdout?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));

  const url = await new Promise<string | undefined>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running behind a failed test.
      child.kill('SIGKILL');
      reject(new Error(`darkroom ${command} did not start: ${printed}`));
    }, 30_000);
    const check = () => {
      const line = printed.split('\n').find((candidate) => candidate.includes('"darkroom is running"'));
      if (!line) return;
      clearTimeout(timer);
      child.stdout?.off('data', check);
      resolve((JSON.parse(line) as { url?: string }).url);
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`darkroom ${command} exited with ${code}: ${printed}`));
    });
  });

  return {
    child,
    url,
    output: () => printed,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** JSON calls to a darkroom process's API with `apiKey` as the Bearer credential. */
export function apiCaller(baseUrl: string, apiKey: string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
}
