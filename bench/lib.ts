import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Small shared pieces of the bench: statistics, the result table, cleanup, progress and a JSON fetch. */

export interface Row {
  metric: string;
  value: number;
  unit: string;
  /** The same metric measured on a baseline in the same run, with a short label saying what it is. */
  reference?: { value: number; label: string };
  /** value / reference.value unless given: some rows define the ratio the other way round (see notes). */
  ratio?: number;
}

/** Nearest-rank percentile (p in 0..100) of a non-empty sample. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Two significant digits below 0.1 (0.014×, not 0.01×), two decimals up to 10, one above. */
function formatRatio(ratio: number): string {
  if (ratio >= 10) return ratio.toFixed(1);
  if (ratio >= 0.1) return ratio.toFixed(2);
  return ratio.toPrecision(2);
}

/** Plain-text table with aligned columns: numbers right-aligned, text left-aligned. */
export function renderTable(rows: Row[]): string {
  const header = ['metric', 'value', 'unit', 'reference', 'ratio'];
  const cells = rows.map((row) => {
    const ratio = row.ratio ?? (row.reference ? row.value / row.reference.value : undefined);
    return [
      row.metric,
      formatNumber(row.value),
      row.unit,
      row.reference ? `${formatNumber(row.reference.value)} (${row.reference.label})` : '—',
      ratio === undefined ? '—' : `${formatRatio(ratio)}×`,
    ];
  });
  const rightAligned = [false, true, false, false, true];
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => (line[column] as string).length)));
  const format = (line: string[]) =>
    line
      .map((cell, column) => {
        const width = widths[column] as number;
        return rightAligned[column] ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [format(header), rule, ...cells.map(format)].join('\n');
}

/**
 * Things to undo (servers, children, temp dirs), undone last-in first-out, each at most once.
 * A Ctrl-C and the bench's own `finally` can both call runAll: they share one pass, and that pass
 * also waits for steps already running through their own undo function (a database being dropped),
 * so the process never exits in the middle of one.
 */
export class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];
  private readonly running = new Set<Promise<void>>();
  private pass: Promise<void> | undefined;

  add(name: string, run: () => Promise<void> | void): () => Promise<void> {
    const step = { name, run };
    this.steps.push(step);
    return async () => {
      const index = this.steps.indexOf(step);
      if (index === -1) return;
      this.steps.splice(index, 1);
      await this.track(step.run());
    };
  }

  runAll(): Promise<void> {
    this.pass ??= (async () => {
      while (this.steps.length > 0 || this.running.size > 0) {
        const step = this.steps.pop();
        if (!step) {
          await Promise.allSettled([...this.running]);
          continue;
        }
        try {
          await this.track(step.run());
        } catch (error) {
          progress(`cleanup "${step.name}" failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })().finally(() => {
      this.pass = undefined;
    });
    return this.pass;
  }

  /** Keeps `result` in `running` until it settles. */
  private async track(result: Promise<void> | void): Promise<void> {
    const promise = Promise.resolve(result);
    this.running.add(promise);
    try {
      await promise;
    } finally {
      this.running.delete(promise);
    }
  }
}

const benchStarted = performance.now();

/** Progress goes to stderr, so stdout carries the header, the table and the notes only. */
export function progress(message: string): void {
  const seconds = ((performance.now() - benchStarted) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${seconds}s] ${message}\n`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface JsonResponse<T> {
  status: number;
  body: T;
}

export async function fetchJson<T>(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<JsonResponse<T>> {
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...init.headers, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Fails with the response when the status is not the expected one. */
export async function expectJson<T>(expected: number, url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
  const response = await fetchJson<T>(url, init);
  if (response.status !== expected) {
    throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status}, expected ${expected}: ${JSON.stringify(response.body)}`);
  }
  return response.body;
}

const TEMP_PREFIX = 'darkroom-bench-';
const STALE_NAME = new RegExp(`^${TEMP_PREFIX}(\\d+)-`);

/** A fresh temporary directory named after this process, removed by `cleanup`. */
export function makeTempDir(cleanup: Cleanup, purpose: string): { path: string; remove: () => Promise<void> } {
  const path = mkdtempSync(join(tmpdir(), `${TEMP_PREFIX}${process.pid}-${purpose}-`));
  const remove = cleanup.add(`remove ${path}`, () => rmSync(path, { recursive: true, force: true }));
  return { path, remove };
}

/**
 * Removes the temporary directories of earlier bench runs that were killed before they could clean
 * up (tsx SIGKILLs its child when a Ctrl-C is not acknowledged within 60 ms, as under full load).
 * A directory is only removed when the process named in it is gone.
 */
export function sweepStaleTempDirs(): number {
  let removed = 0;
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(STALE_NAME.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}

/** Whether a process with this id exists on this machine (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls GET {url}/ready until it answers 200, or throws after `timeoutMs`. */
export async function waitUntilReady(url: string, timeoutMs: number): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${url}/ready`).then(
      async (response) => {
        await response.arrayBuffer();
        return response.status;
      },
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > giveUpAt) throw new Error(`GET ${url}/ready still answers ${status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}
