import { afterEach, describe, expect, it } from 'vitest';
import { makeEmbeddedQueue } from '../src/queue/embedded.ts';
import type { HandlerResult, JobQueue } from '../src/queue/port.ts';

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await tick(2);
  }
}

describe('embedded queue', () => {
  let queue: JobQueue;
  afterEach(() => queue.close());

  it('delivers the highest priority first', async () => {
    queue = makeEmbeddedQueue();
    const seen: string[] = [];
    await queue.enqueue('low', { priority: -5 });
    await queue.enqueue('mid', { priority: 0 });
    await queue.enqueue('high', { priority: 50 });
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, onError: () => undefined });
    await until(() => seen.length === 3);
    expect(seen).toEqual(['high', 'mid', 'low']);
  });

  it('holds a delayed entry back until its delay has passed', async () => {
    queue = makeEmbeddedQueue();
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 2, onError: () => undefined });
    await queue.enqueue('later', { priority: 100, delayMs: 80 });
    await queue.enqueue('now', { priority: 0 });
    await until(() => seen.length === 1);
    expect(seen).toEqual(['now']);
    expect(await queue.stats()).toEqual({ waiting: 0, delayed: 1, active: 0 });
    await until(() => seen.length === 2);
    expect(seen).toEqual(['now', 'later']);
  });

  it('keeps one entry per job id', async () => {
    queue = makeEmbeddedQueue();
    await queue.enqueue('a', { priority: 0, delayMs: 50 });
    await queue.enqueue('a', { priority: 0, delayMs: 10 });
    await queue.enqueue('a', { priority: 0, delayMs: 30 });
    expect(await queue.stats()).toEqual({ waiting: 0, delayed: 1, active: 0 });
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 4, onError: () => undefined });
    await tick(120);
    expect(seen).toEqual(['a']);
  });

  it('drops removed entries, waiting or delayed', async () => {
    queue = makeEmbeddedQueue();
    await queue.enqueue('waiting', { priority: 0 });
    await queue.enqueue('delayed', { priority: 0, delayMs: 20 });
    await queue.enqueue('kept', { priority: 0 });
    await queue.remove('waiting');
    await queue.remove('delayed');
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, onError: () => undefined });
    await tick(60);
    expect(seen).toEqual(['kept']);
  });

  it('runs a job again when its handler asks, and when it was enqueued while active', async () => {
    queue = makeEmbeddedQueue();
    let turns = 0;
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    queue.consume(
      async (): Promise<HandlerResult> => {
        turns += 1;
        if (turns === 1) return { runAgainInMs: 5 };
        if (turns === 2) await blocked;
        return undefined;
      },
      { concurrency: 1, onError: () => undefined },
    );
    await queue.enqueue('job', { priority: 0 });
    await until(() => turns === 2);
    await queue.enqueue('job', { priority: 0 });
    release();
    await until(() => turns === 3);
    await tick(30);
    expect(turns).toBe(3);
  });

  it('delivers again after a handler throws', async () => {
    queue = makeEmbeddedQueue();
    const errors: string[] = [];
    let turns = 0;
    queue.consume(
      async () => {
        turns += 1;
        if (turns === 1) throw new Error('database unavailable');
        return undefined;
      },
      { concurrency: 1, onError: (error, id) => errors.push(`${id}: ${(error as Error).message}`) },
    );
    await queue.enqueue('job', { priority: 0 });
    await until(() => turns === 2);
    expect(errors).toEqual(['job: database unavailable']);
  });

  it('never runs more handlers at once than its concurrency', async () => {
    queue = makeEmbeddedQueue();
    let running = 0;
    let peak = 0;
    let done = 0;
    queue.consume(
      async () => {
        running += 1;
        peak = Math.max(peak, running);
        await tick(5);
        running -= 1;
        done += 1;
        return undefined;
      },
      { concurrency: 3, onError: () => undefined },
    );
    for (let i = 0; i < 20; i += 1) await queue.enqueue(`job-${i}`, { priority: 0 });
    await until(() => done === 20);
    expect(peak).toBe(3);
  });
});
