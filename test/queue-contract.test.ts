import { randomUUID } from 'node:crypto';
import { Queue, createPostgresBackend, withBackend } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { makeBullmqQueue, type BullmqQueueOptions } from '../src/queue/bullmq.ts';
import { makeEmbeddedQueue } from '../src/queue/embedded.ts';
import type { HandlerResult, JobHandler, JobQueue, QueueStats } from '../src/core/ports/queue.ts';

/**
 * The queue contract: every adapter of the queue port passes these cases. Redis and PostgreSQL run
 * when TEST_REDIS_URL / TEST_DATABASE_URL are set; each test uses a queue name of its own.
 * The BullMQ cases at the end are about several processes sharing one queue, which the embedded
 * queue (one process) does not do.
 */

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await tick(2);
  }
}

/** A turn's handler returns before its entry is gone, so counts after it are read until they settle. */
async function statsSettleTo(queue: JobQueue, expected: QueueStats, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const stats = await queue.stats();
    if (Date.now() > end || JSON.stringify(stats) === JSON.stringify(expected)) {
      expect(stats).toEqual(expected);
      return;
    }
    await tick(10);
  }
}

type Extra = Pick<BullmqQueueOptions, 'lockDurationMs' | 'stalledIntervalMs' | 'groups' | 'fairShareQuantum'>;

interface Adapter {
  name: string;
  /** Several instances made with the same name share their entries, like processes on one Redis. */
  shared: boolean;
  make(queueName: string, extra?: Extra): JobQueue;
  /** Deletes what the named BullMQ queues left in the shared store. */
  cleanUp(queueNames: string[]): Promise<void>;
}

const adapters: Adapter[] = [
  { name: 'embedded', shared: false, make: (_queueName, extra) => makeEmbeddedQueue({ fairShareQuantum: extra?.fairShareQuantum }), cleanUp: async () => undefined },
];
if (process.env.TEST_REDIS_URL) {
  const url = process.env.TEST_REDIS_URL;
  const prefix = 'darkroom-test';
  adapters.push({
    name: 'redis',
    shared: true,
    make: (queueName, extra) => makeBullmqQueue({ backend: 'redis', url, queueName, prefix, ...extra }),
    cleanUp: (queueNames) => obliterate(queueNames, (name) => new Queue(name, { connection: { url }, prefix })),
  });
}
if (process.env.TEST_DATABASE_URL) {
  const url = process.env.TEST_DATABASE_URL;
  const postgres = withBackend(createPostgresBackend);
  adapters.push({
    name: 'postgres',
    shared: true,
    make: (queueName, extra) => makeBullmqQueue({ backend: 'postgres', url, queueName, ...extra }),
    cleanUp: (queueNames) => obliterate(queueNames, (name) => new postgres.Queue(name, { connection: { connectionString: url } })),
  });
}

async function obliterate(queueNames: string[], open: (name: string) => { obliterate(options: { force: boolean }): Promise<void>; close(): Promise<void> }) {
  for (const name of queueNames) {
    const queue = open(name);
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

const quiet = { onError: () => undefined };

describe.each(adapters)('$name queue', (adapter) => {
  const opened: JobQueue[] = [];
  const queueNames = new Set<string>();
  let queueName = '';
  const open = (extra?: Extra): JobQueue => {
    const queue = adapter.make(queueName, extra);
    opened.push(queue);
    queueNames.add(queueName);
    for (const group of Object.keys(extra?.groups ?? {})) queueNames.add(`${queueName}-${group}`);
    return queue;
  };
  const fresh = (extra?: Extra): JobQueue => {
    queueName = `contract-${randomUUID()}`;
    return open(extra);
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((queue) => queue.close()));
    await adapter.cleanUp([...queueNames]);
    queueNames.clear();
  });

  it('delivers the highest priority first', async () => {
    const queue = fresh();
    const seen: string[] = [];
    await queue.enqueue('low', { priority: -5 });
    await queue.enqueue('mid', { priority: 0 });
    await queue.enqueue('high', { priority: 50 });
    await queue.enqueue('lowest', { priority: -100 });
    await queue.enqueue('highest', { priority: 100 });
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, ...quiet });
    await until(() => seen.length === 5);
    expect(seen).toEqual(['highest', 'high', 'mid', 'low', 'lowest']);
  });

  it('holds a delayed entry back until its delay has passed', async () => {
    const queue = fresh();
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 2, ...quiet });
    await queue.enqueue('later', { priority: 100, delayMs: 300 });
    await queue.enqueue('now', { priority: 0 });
    await until(() => seen.length === 1);
    expect(seen).toEqual(['now']);
    await statsSettleTo(queue, { waiting: 0, delayed: 1, active: 0 });
    await until(() => seen.length === 2);
    expect(seen).toEqual(['now', 'later']);
  });

  it('keeps one entry per job id, and the sooner of two runs', async () => {
    const queue = fresh();
    await queue.enqueue('a', { priority: 0, delayMs: 60_000 });
    await queue.enqueue('a', { priority: 0, delayMs: 300 });
    await queue.enqueue('a', { priority: 0, delayMs: 600 });
    expect(await queue.stats()).toEqual({ waiting: 0, delayed: 1, active: 0 });
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 4, ...quiet });
    // Delivered long before the first enqueue's minute: the sooner run was kept.
    await until(() => seen.length === 1);
    await tick(500);
    expect(seen).toEqual(['a']);
    await statsSettleTo(queue, { waiting: 0, delayed: 0, active: 0 });
  });

  it('moves a delayed entry forward to run now', async () => {
    const queue = fresh();
    await queue.enqueue('a', { priority: 0, delayMs: 60_000 });
    await queue.enqueue('a', { priority: 0 });
    expect(await queue.stats()).toEqual({ waiting: 1, delayed: 0, active: 0 });
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, ...quiet });
    await until(() => seen.length === 1);
    expect(seen).toEqual(['a']);
  });

  it('drops removed entries, waiting or delayed', async () => {
    const queue = fresh();
    await queue.enqueue('removed-waiting', { priority: 0 });
    await queue.enqueue('removed-delayed', { priority: 0, delayMs: 20 });
    await queue.enqueue('kept', { priority: 0 });
    await queue.remove('removed-waiting');
    await queue.remove('removed-delayed');
    await queue.remove('never-enqueued');
    expect(await queue.stats()).toEqual({ waiting: 1, delayed: 0, active: 0 });
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, ...quiet });
    await until(() => seen.length === 1);
    await tick(100);
    expect(seen).toEqual(['kept']);
  });

  it('runs a job again when its handler asks, and when it was enqueued while active', async () => {
    const queue = fresh();
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
      { concurrency: 1, ...quiet },
    );
    await queue.enqueue('job', { priority: 0 });
    await until(() => turns === 2);
    expect(await queue.stats()).toEqual({ waiting: 0, delayed: 0, active: 1 });
    await queue.enqueue('job', { priority: 0 });
    release();
    await until(() => turns === 3);
    await tick(100);
    expect(turns).toBe(3);
    await statsSettleTo(queue, { waiting: 0, delayed: 0, active: 0 });
  });

  it('keeps the sooner run when a job enqueued while active also asks to run again later', async () => {
    const queue = fresh();
    let turns = 0;
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    queue.consume(
      async (): Promise<HandlerResult> => {
        turns += 1;
        if (turns > 1) return undefined;
        await blocked;
        return { runAgainInMs: 60_000 };
      },
      { concurrency: 1, ...quiet },
    );
    await queue.enqueue('job', { priority: 0 });
    await until(() => turns === 1);
    await queue.enqueue('job', { priority: 0 });
    release();
    // Not a minute later: the enqueue's immediate run won over the handler's.
    await until(() => turns === 2);
    await statsSettleTo(queue, { waiting: 0, delayed: 0, active: 0 });
  });

  it('delivers again after a handler throws', async () => {
    const queue = fresh();
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
    const queue = fresh();
    let running = 0;
    let peak = 0;
    let done = 0;
    queue.consume(
      async () => {
        running += 1;
        peak = Math.max(peak, running);
        await tick(20);
        running -= 1;
        done += 1;
        return undefined;
      },
      { concurrency: 3, ...quiet },
    );
    for (let i = 0; i < 20; i += 1) await queue.enqueue(`job-${i}`, { priority: 0 });
    await until(() => done === 20);
    expect(peak).toBe(3);
  });

  it('counts waiting, delayed and active entries', async () => {
    const queue = fresh();
    expect(await queue.stats()).toEqual({ waiting: 0, delayed: 0, active: 0 });
    await queue.enqueue('first', { priority: 10 });
    await queue.enqueue('second', { priority: 0 });
    await queue.enqueue('third', { priority: 0 });
    await queue.enqueue('later', { priority: 0, delayMs: 60_000 });
    expect(await queue.stats()).toEqual({ waiting: 3, delayed: 1, active: 0 });
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const consumer = queue.consume(
      async (id) => {
        started.push(id);
        await blocked;
        return undefined;
      },
      { concurrency: 1, ...quiet },
    );
    await until(() => started.length === 1);
    expect(started).toEqual(['first']);
    expect(await queue.stats()).toEqual({ waiting: 2, delayed: 1, active: 1 });
    release();
    await until(() => started.length === 3);
    await consumer.stop(1000);
    await statsSettleTo(queue, { waiting: 0, delayed: 1, active: 0 });
  });

  it('starts the owners of one priority in turns, higher priorities first', async () => {
    const queue = fresh();
    const enqueues: [string, string, number][] = [
      ['a1', 'a', 0],
      ['a2', 'a', 0],
      ['a3', 'a', 0],
      ['b1', 'b', 0],
      ['a4', 'a', 0],
      ['b2', 'b', 0],
      ['c1', 'c', 0],
      ['a-urgent', 'a', 10],
      ['b3', 'b', 0],
      ['b-later', 'b', -10],
    ];
    for (const [id, owner, priority] of enqueues) await queue.enqueue(id, { priority, owner });
    expect(await queue.stats()).toEqual({ waiting: 10, delayed: 0, active: 0 });
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, ...quiet });
    await until(() => seen.length === 10);
    // Owner a's backlog takes one place per round, whatever its length; a's urgent job is not held back by it.
    expect(seen).toEqual(['a-urgent', 'a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'b3', 'a4', 'b-later']);
    await statsSettleTo(queue, { waiting: 0, delayed: 0, active: 0 });
  });

  it('lets each owner start up to FAIR_SHARE_QUANTUM jobs per round', async () => {
    const queue = fresh({ fairShareQuantum: 2 });
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5']) await queue.enqueue(id, { priority: 0, owner: 'a' });
    for (const id of ['b1', 'b2', 'b3']) await queue.enqueue(id, { priority: 0, owner: 'b' });
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, ...quiet });
    await until(() => seen.length === 8);
    expect(seen).toEqual(['a1', 'a2', 'b1', 'b2', 'a3', 'a4', 'b3', 'a5']);
  });

  it('never puts a turn of a started job behind its owner\'s waiting jobs', async () => {
    const queue = fresh();
    for (const id of ['a1', 'a2', 'a3']) await queue.enqueue(id, { priority: 0, owner: 'a' });
    await queue.enqueue('b1', { priority: 0, owner: 'b' });
    const seen: string[] = [];
    queue.consume(
      async (id): Promise<HandlerResult> => {
        seen.push(id);
        return id === 'a1' && seen.length === 1 ? { runAgainInMs: 0 } : undefined;
      },
      { concurrency: 1, ...quiet },
    );
    await until(() => seen.length === 5);
    // a1's second turn (a poll, say) is a continuation: it does not wait for a2 and a3 to have theirs.
    expect(seen.filter((id) => id === 'a1')).toHaveLength(2);
    expect(seen.lastIndexOf('a1')).toBeLessThan(seen.indexOf('a3'));
  });

  it('gives the place of a removed entry to its owner\'s next one', async () => {
    const queue = fresh();
    for (const id of ['a1', 'a2', 'a3', 'a4']) await queue.enqueue(id, { priority: 0, owner: 'a' });
    await queue.enqueue('a1', { priority: 0, owner: 'a' });
    await queue.enqueue('a3', { priority: 0, owner: 'a' });
    expect(await queue.stats()).toEqual({ waiting: 4, delayed: 0, active: 0 });
    // a1 is the one in line, a2 is held behind it.
    await queue.remove('a1');
    await queue.remove('a2');
    expect(await queue.stats()).toEqual({ waiting: 2, delayed: 0, active: 0 });
    const seen: string[] = [];
    queue.consume(async (id) => void seen.push(id), { concurrency: 1, ...quiet });
    await until(() => seen.length === 2);
    await tick(100);
    expect(seen).toEqual(['a3', 'a4']);
  });

  it('answers ping until it is closed, and closes twice without error', async () => {
    const queue = fresh();
    await expect(queue.ping()).resolves.toBeUndefined();
    await queue.close();
    await queue.close();
    await expect(queue.ping()).rejects.toThrow();
  });

  it.skipIf(!adapter.shared)('gives each id to one consumer at a time when several share the queue', async () => {
    const first = fresh();
    const second = open();
    const running = new Set<string>();
    const turns = new Map<string, number>();
    let overlaps = 0;
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const handler: JobHandler = async (id) => {
      if (running.has(id)) overlaps += 1;
      running.add(id);
      turns.set(id, (turns.get(id) ?? 0) + 1);
      if (id === 'held' && turns.get(id) === 1) await blocked;
      else await tick(5);
      running.delete(id);
      return undefined;
    };
    first.consume(handler, { concurrency: 3, ...quiet });
    second.consume(handler, { concurrency: 3, ...quiet });
    await first.enqueue('held', { priority: 0 });
    await until(() => running.has('held'));
    // Enqueued through the other instance while a consumer holds it: run again after, never beside.
    await second.enqueue('held', { priority: 0 });
    for (let i = 0; i < 20; i += 1) await (i % 2 ? first : second).enqueue(`job-${i}`, { priority: 0 });
    await until(() => [...turns.keys()].filter((id) => id.startsWith('job-')).length === 20 && running.size === 1);
    release();
    await until(() => turns.get('held') === 2);
    await tick(100);
    expect(overlaps).toBe(0);
    expect(turns.get('held')).toBe(2);
    expect([...turns.entries()].filter(([id, count]) => id.startsWith('job-') && count !== 1)).toEqual([]);
  });

  it.skipIf(!adapter.shared)('takes turns across the owners enqueued through every instance', async () => {
    const first = fresh();
    const second = open();
    for (const id of ['a1', 'a2', 'a3']) await first.enqueue(id, { priority: 0, owner: 'a' });
    for (const id of ['b1', 'b2']) await second.enqueue(id, { priority: 0, owner: 'b' });
    await second.enqueue('a4', { priority: 0, owner: 'a' });
    const seen: string[] = [];
    second.consume(async (id) => void seen.push(id), { concurrency: 1, ...quiet });
    await until(() => seen.length === 6);
    expect(seen).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'a4']);
  });

  it.skipIf(!adapter.shared)('hands the entry of a consumer that died mid-turn to another consumer', async () => {
    const shortLocks: Extra = { lockDurationMs: 500, stalledIntervalMs: 250 };
    const dying = fresh(shortLocks);
    const survivor = open(shortLocks);
    const turns: string[] = [];
    let unblock: () => void = () => undefined;
    const never = new Promise<void>((resolve) => (unblock = resolve));
    dying.consume(
      async () => {
        turns.push('dying');
        await never;
        return undefined;
      },
      { concurrency: 1, ...quiet },
    );
    await dying.enqueue('job', { priority: 0 });
    await until(() => turns.length === 1);
    // Its connections close while the handler is still running, as when the process is killed.
    await dying.close();
    survivor.consume(
      async () => {
        turns.push('survivor');
        return undefined;
      },
      { concurrency: 1, ...quiet },
    );
    await until(() => turns.length === 2, 20_000);
    expect(turns).toEqual(['dying', 'survivor']);
    unblock();
  });

  it.skipIf(!adapter.shared)('holds a group to its concurrency across every consumer', async () => {
    const limits: Extra = { groups: { civitai: { concurrency: 2 } } };
    const first = fresh(limits);
    const second = open(limits);
    let running = 0;
    let peak = 0;
    let done = 0;
    const handler: JobHandler = async () => {
      running += 1;
      peak = Math.max(peak, running);
      await tick(20);
      running -= 1;
      done += 1;
      return undefined;
    };
    first.consume(handler, { concurrency: 4, ...quiet });
    second.consume(handler, { concurrency: 4, ...quiet });
    for (let i = 0; i < 12; i += 1) await first.enqueue(`job-${i}`, { priority: 0, group: 'civitai' });
    await until(() => done === 12);
    expect(peak).toBe(2);
    await statsSettleTo(first, { waiting: 0, delayed: 0, active: 0 });
  });
});
