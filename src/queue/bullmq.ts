import {
  DEFAULT_SCHEMA,
  DelayedError,
  ErrorCode,
  Queue,
  Worker,
  createPostgresBackend,
  runMigrations,
  withBackend,
  type Job,
  type JobProgress,
  type JobState,
  type JobsOptions,
  type JobType,
} from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Consumer, EnqueueOptions, JobHandler, JobQueue, QueueStats } from '../core/ports/queue.ts';
import { makePostgresFairShare, makeRedisFairShare, parseSlotKey, slotKey, type FairShare, type FairSlot } from './fair-share.ts';

/** Limits that hold across every worker of every process, for the jobs of one group (provider). */
export interface GroupLimits {
  concurrency?: number;
  rateLimit?: { max: number; durationMs: number };
}

export interface BullmqQueueOptions {
  backend: 'redis' | 'postgres';
  /** redis:// URL, or postgres:// URL (BullMQ keeps its tables in the `bullmq` schema of that database). */
  url: string;
  queueName?: string;
  /** Redis key prefix; the PostgreSQL backend namespaces by schema and has no prefix. */
  prefix?: string;
  /** How many never-started entries of one owner and priority are in BullMQ at once (FAIR_SHARE_QUANTUM; 1 by default). */
  fairShareQuantum?: number;
  /** Groups with limits get a BullMQ queue of their own; every other group shares the main queue. */
  groups?: Record<string, GroupLimits>;
  /**
   * How long a job stays claimed by a worker that stopped renewing it (it crashed) before another
   * worker may take it over, and how often workers look for such jobs. BullMQ's defaults (30 s) unless set.
   */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Connection and background errors, which BullMQ reports as events rather than to a caller. */
  onError?: (error: unknown) => void;
}

/** What an entry carries besides its id. Written by enqueue and by the end of each turn. */
interface EntryData {
  /** When the entry is due (epoch ms): BullMQ keeps a delayed job's due time only inside its index. */
  dueAt: number;
  /** Asked for by an enqueue that found the job active: another run once that turn ends. */
  rerun?: { turn: number; dueAt: number };
  /** The fair-share slot (its key) that admitted this entry: its first turn releases the place. */
  slot?: string;
}

/**
 * The part of BullMQ's Queue this adapter uses, so the Redis and PostgreSQL flavours (distinct
 * generic instantiations) are handled as one.
 */
interface EntryQueue {
  add(name: string, data: EntryData, opts: JobsOptions): Promise<unknown>;
  getJob(jobId: string): Promise<Job<EntryData> | undefined>;
  getJobState(jobId: string): Promise<JobState | 'unknown'>;
  getJobCounts(...types: JobType[]): Promise<Record<string, number>>;
  remove(jobId: string): Promise<number>;
  setGlobalConcurrency(concurrency: number): Promise<number>;
  removeGlobalConcurrency(): Promise<number>;
  setGlobalRateLimit(max: number, duration: number): Promise<number>;
  removeGlobalRateLimit(): Promise<number>;
  close(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

interface EntryWorker {
  pause(doNotWaitActive?: boolean): Promise<void>;
  close(force?: boolean): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'failed', listener: (job: Job<EntryData> | undefined, error: Error) => void): unknown;
}

interface NewEntry {
  data: EntryData;
  opts: JobsOptions;
}

type Processor = (job: Job<EntryData>, token?: string) => Promise<void>;

interface WorkerSettings {
  concurrency: number;
  lockDuration?: number;
  stalledInterval?: number;
  maxStalledCount: number;
}

/** One datastore: its shared connection for queue operations, and how to build BullMQ objects on it. */
interface Store {
  /** Resolves once the datastore can hold queues (PostgreSQL: BullMQ's schema is migrated). */
  prepare(): Promise<void>;
  makeQueue(name: string): EntryQueue;
  makeWorker(name: string, processor: Processor, settings: WorkerSettings): EntryWorker;
  /** The admission book of fair shares, kept beside the queues named after `queueName`. */
  makeFairShare(queueName: string, quantum: number): FairShare;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const JOB_NAME = 'turn';
const DEFAULT_QUEUE_NAME = 'darkroom';
/** A handler that throws (a bug, the database gone) is delivered again after this long, as in the embedded queue. */
const REDELIVERY_DELAY_MS = 1000;
/**
 * darkroom's job row, not the queue, decides when a job gives up; BullMQ would fail (and, with
 * removeOnFail, drop) an entry after this many failed turns or stalls, so both are out of reach.
 */
const NEVER_GIVE_UP = 1_000_000;
/** How often a consumer tries again to reach a store that was down when it started. */
const STORE_RETRY_MS = 1000;
/** An enqueue that keeps meeting an entry changing state under it stops after this many looks. */
const ENQUEUE_ROUNDS = 50;
/** How often, and how long, an enqueue waits for a turn that is writing its final move. */
const FINISHING_POLL_MS = 10;
const FINISHING_WAIT_MS = 2000;

/**
 * BullMQ adapter of the queue port, on Redis or on BullMQ's PostgreSQL backend.
 *
 * The BullMQ job id is the darkroom job id, so BullMQ keeps one entry per id; entries are removed
 * once finished so that a later enqueue creates a new one. The port's two promises that BullMQ
 * lacks are built on its job fields:
 * - "keep the sooner run": each entry records its due time in its data, and an enqueue that is
 *   sooner moves a delayed entry forward (changeDelay, promote).
 * - "enqueued while active runs again after": the enqueue writes a rerun request (tagged with the
 *   turn, BullMQ's attemptsStarted) into the job data; the turn, before its final move, marks itself
 *   finishing in the job progress and then reads the data. Each side writes before it reads the
 *   other's field, so either the turn sees the request or the enqueue sees the turn finishing and
 *   schedules again once it has finished.
 * A turn that asks to run again (or whose handler threw) is moved back to delayed under the same id.
 */
/** The BullMQ adapter, which can also hand its queues to an admin dashboard (Bull Board). */
export interface BullmqJobQueue extends JobQueue {
  /** The BullMQ queues behind this adapter (the main one and one per limited provider), once ready. */
  dashboardQueues(): Promise<Queue[]>;
}

export function makeBullmqQueue(options: BullmqQueueOptions): BullmqJobQueue {
  const reportError = options.onError ?? (() => undefined);
  const store = options.backend === 'redis' ? makeRedisStore(options, reportError) : makePostgresStore(options, reportError);
  const queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
  const groups = Object.entries(options.groups ?? {});

  const nameOf = (group: string | undefined) => (group === undefined ? queueName : `${queueName}-${group}`);
  const queuesByName = new Map<string, EntryQueue>();
  const allQueues = () => [...queuesByName.values()];
  const fair = store.makeFairShare(queueName, Math.max(1, options.fairShareQuantum ?? 1));

  let preparing: Promise<void> | undefined;
  /** Prepares the store and the queues once; a failed attempt (the store unreachable) is tried again by the next caller. */
  function ready(): Promise<void> {
    preparing ??= (async () => {
      await store.prepare();
      await fair.prepare();
      if (queuesByName.size === 0) {
        for (const name of [nameOf(undefined), ...groups.map(([group]) => nameOf(group))]) {
          const queue = store.makeQueue(name);
          queue.on('error', reportError);
          queuesByName.set(name, queue);
        }
      }
      for (const [group, limits] of groups) await applyLimits(queuesByName.get(nameOf(group)) as EntryQueue, limits);
    })().catch((error: unknown) => {
      preparing = undefined;
      throw error;
    });
    return preparing;
  }
  // Starts early so the first request does not wait for it; its failures are met by the operations.
  ready().catch(() => undefined);

  let consumer: Consumer | undefined;
  let closing: Promise<void> | undefined;

  async function queueFor(group: string | undefined): Promise<EntryQueue> {
    await ready();
    if (closing) throw new Error('The queue is closed');
    const groupQueue = group === undefined ? undefined : queuesByName.get(nameOf(group));
    return groupQueue ?? (queuesByName.get(nameOf(undefined)) as EntryQueue);
  }

  /**
   * One look at the id's entry, and what this enqueue does about it: done, look again, or wait for
   * a turn that is writing its final move.
   */
  async function settle(queue: EntryQueue, jobId: string, entry: NewEntry): Promise<'settled' | 'again' | 'finishing'> {
    const { dueAt } = entry.data;
    const state = await queue.getJobState(jobId);
    switch (state) {
      case 'unknown': {
        await queue.add(JOB_NAME, entry.data, { ...entry.opts, delay: Math.max(0, dueAt - Date.now()) });
        // Whatever holds the id now was added after this enqueue began, so a turn of it that has
        // started already serves this enqueue; only an entry still due later than asked needs moving.
        const job = await queue.getJob(jobId);
        if (!job || job.attemptsStarted > 0 || job.data.dueAt <= dueAt) return 'settled';
        return (await moveForward(job, dueAt)) ? 'settled' : 'again';
      }
      case 'waiting':
      case 'prioritized':
      case 'waiting-children':
        return 'settled';
      case 'delayed': {
        const job = await queue.getJob(jobId);
        if (!job) return 'again';
        if (job.data.dueAt <= dueAt) return 'settled';
        return (await moveForward(job, dueAt)) ? 'settled' : 'again';
      }
      case 'active': {
        const job = await queue.getJob(jobId);
        if (!job || job.attemptsStarted === 0) return 'again';
        const turn = job.attemptsStarted;
        if (job.progress === finishingMark(turn)) return 'finishing';
        const requested = job.data.rerun?.turn === turn ? job.data.rerun.dueAt : Infinity;
        if (dueAt < requested && !(await unlessMovedOn(() => job.updateData({ ...job.data, rerun: { turn, dueAt } })))) {
          return 'again';
        }
        const after = await queue.getJob(jobId);
        if (after?.attemptsStarted !== turn) return 'again';
        return after.progress === finishingMark(turn) ? 'finishing' : 'settled';
      }
      case 'completed':
      case 'failed':
        // Only entries left by other settings linger once finished; they would swallow the add.
        await queue.remove(jobId);
        return 'again';
    }
  }

  /** Makes a delayed entry due at `dueAt` instead; false when it stopped being delayed meanwhile. */
  function moveForward(job: Job<EntryData>, dueAt: number): Promise<boolean> {
    return unlessMovedOn(async () => {
      await job.updateData({ dueAt });
      const delayMs = dueAt - Date.now();
      if (delayMs > 0) await job.changeDelay(delayMs);
      else await job.promote();
    });
  }

  async function applyLimits(queue: EntryQueue, limits: GroupLimits): Promise<void> {
    // The limits live in the queue's metadata, where every worker of every process reads them, so
    // configuration is the truth: a limit taken out of it is removed here.
    if (limits.concurrency !== undefined) await queue.setGlobalConcurrency(limits.concurrency);
    else await queue.removeGlobalConcurrency();
    if (limits.rateLimit) await queue.setGlobalRateLimit(limits.rateLimit.max, limits.rateLimit.durationMs);
    else await queue.removeGlobalRateLimit();
  }

  function queueNameOf(queue: EntryQueue): string {
    for (const [name, each] of queuesByName) if (each === queue) return name;
    throw new Error('The queue is not one of this adapter');
  }

  /** Schedules the entry of `jobId`, whatever state another process leaves its current entry in. */
  async function place(queue: EntryQueue, jobId: string, entry: NewEntry): Promise<void> {
    let rounds = 0;
    let finishingSince: number | undefined;
    for (;;) {
      const outcome = await settle(queue, jobId, entry);
      if (outcome === 'settled') return;
      if (outcome === 'again' && ++rounds >= ENQUEUE_ROUNDS) {
        throw new Error(`Could not schedule job ${jobId}: its queue entry kept changing state`);
      }
      if (outcome === 'finishing') {
        finishingSince ??= Date.now();
        // A turn stuck this long between its last step and its final move belongs to a worker
        // that died there; stalled-job recovery delivers that entry again.
        if (Date.now() - finishingSince > FINISHING_WAIT_MS) return;
        await sleep(FINISHING_POLL_MS);
      }
    }
  }

  /**
   * Adds the entries a slot has just admitted; each goes behind every entry of its priority. An
   * admitted id has no entry (its enqueue found none), so a plain add does: if one appeared meanwhile,
   * BullMQ keeps that one, and the place is given back by `reclaim` once it is gone.
   */
  async function admit(slot: FairSlot, jobIds: string[]): Promise<void> {
    const queue = queuesByName.get(slot.queue);
    if (!queue) throw new Error(`No queue ${slot.queue} for a fair-share slot`);
    for (const jobId of jobIds) await queue.add(JOB_NAME, { dueAt: Date.now(), slot: slotKey(slot) }, entryOptions(jobId, slot.priority));
  }

  /**
   * Gives back the places of admitted ids that have no entry: a process that admitted them died
   * before adding the entry. Run when an id is offered again (the reconciler does that to a held
   * job nobody has touched), so such a slot is freed within RECONCILE_STALE_MS.
   */
  async function reclaim(slot: FairSlot): Promise<void> {
    const queue = queuesByName.get(slot.queue);
    if (!queue) return;
    for (const jobId of await fair.admittedOf(slot)) {
      const state = await queue.getJobState(jobId);
      if (state === 'unknown' || state === 'completed' || state === 'failed') await admit(slot, await fair.release(slot, jobId));
    }
  }

  return {
    kind: options.backend,

    async dashboardQueues() {
      await ready();
      // Both stores build BullMQ Queue objects; EntryQueue only narrows them for this adapter's use.
      return allQueues() as unknown as Queue[];
    },

    async enqueue(jobId, enqueueOptions: EnqueueOptions) {
      const queue = await queueFor(enqueueOptions.group);
      const delayMs = Math.max(0, enqueueOptions.delayMs ?? 0);
      const priority = bullmqPriority(enqueueOptions.priority);
      // Only an entry due now takes its owner's turn, and only when the id has no entry yet: one that
      // exists (a continuation, or the same fresh job enqueued again) keeps the usual rules.
      if (enqueueOptions.owner !== undefined && delayMs === 0 && (await queue.getJobState(jobId)) === 'unknown') {
        const slot: FairSlot = { queue: queueNameOf(queue), priority, owner: enqueueOptions.owner };
        const { added, admitted } = await fair.offer(slot, jobId);
        await admit(slot, admitted);
        if (!added) await reclaim(slot);
        return;
      }
      await place(queue, jobId, { data: { dueAt: Date.now() + delayMs }, opts: entryOptions(jobId, priority) });
    },

    async remove(jobId) {
      await ready();
      const forgotten = await fair.forget(jobId);
      if (forgotten) await admit(forgotten.slot, forgotten.admitted);
      // Without the group, the entry may be in any queue; a job id is only ever in one of them.
      await Promise.all(allQueues().map((queue) => queue.remove(jobId)));
    },

    consume(handler: JobHandler, consumeOptions) {
      if (consumer) throw new Error('This queue has a consumer already');
      const { onError } = consumeOptions;
      const concurrency = Math.max(0, consumeOptions.concurrency);

      const processor: Processor = async (job, token) => {
        const jobId = job.id;
        if (jobId === undefined) throw new Error('BullMQ delivered a job without an id');
        const turn = job.attemptsStarted;
        // The job's start is its owner's turn: the owner's next held entry joins the back of the line.
        // A throw here fails the turn before the handler runs; BullMQ delivers the entry again.
        if (job.data.slot !== undefined) {
          const slot = parseSlotKey(job.data.slot);
          await admit(slot, await fair.release(slot, jobId));
        }
        let next: number | undefined;
        try {
          const result = await handler(jobId);
          if (result) next = Date.now() + Math.max(0, result.runAgainInMs);
        } catch (error) {
          onError(error, jobId);
          next = Date.now() + REDELIVERY_DELAY_MS;
        }
        await job.updateProgress(finishingMark(turn));
        const current = await queuesByName.get(job.queueName)?.getJob(jobId);
        const rerun = current?.data.rerun?.turn === turn ? current.data.rerun.dueAt : undefined;
        const dueAt = sooner(next, rerun);
        if (dueAt === undefined) return;
        await job.updateData({ dueAt });
        await job.moveToDelayed(dueAt, token);
        throw new DelayedError();
      };

      let workers: EntryWorker[] = [];
      let stopped = false;
      const started = (async () => {
        // A worker process that starts while the store is down waits for it rather than idling forever.
        for (;;) {
          if (stopped) return;
          try {
            await ready();
            break;
          } catch (error) {
            reportError(error);
            await sleep(STORE_RETRY_MS);
          }
        }
        if (stopped || concurrency === 0) return;
        // BullMQ takes an option set to undefined as given, so only the ones set are passed.
        const settings = {
          maxStalledCount: NEVER_GIVE_UP,
          ...(options.lockDurationMs === undefined ? {} : { lockDuration: options.lockDurationMs }),
          ...(options.stalledIntervalMs === undefined ? {} : { stalledInterval: options.stalledIntervalMs }),
        };
        workers = [
          store.makeWorker(nameOf(undefined), processor, { ...settings, concurrency }),
          ...groups.map(([group, limits]) =>
            store.makeWorker(nameOf(group), processor, {
              ...settings,
              concurrency: Math.min(concurrency, limits.concurrency ?? concurrency),
            }),
          ),
        ];
        for (const worker of workers) {
          worker.on('error', reportError);
          // Reached only when a turn's own bookkeeping failed (the store unreachable): BullMQ then
          // retries the entry after REDELIVERY_DELAY_MS.
          worker.on('failed', (job, error) => onError(error, job?.id ?? 'unknown'));
        }
      })();
      started.catch(reportError);

      let stopping: Promise<void> | undefined;
      const stop = (graceMs: number) => {
        stopping ??= (async () => {
          stopped = true;
          await started.catch(() => undefined);
          // pause() stops fetching and waits for running turns; past the grace period the workers
          // close without them, and their entries come back through stalled-job recovery.
          await Promise.race([Promise.all(workers.map((worker) => worker.pause())), sleep(graceMs)]);
          await Promise.all(workers.map((worker) => worker.close(true)));
        })();
        return stopping;
      };
      consumer = { stop };
      return consumer;
    },

    async stats(): Promise<QueueStats> {
      await ready();
      const [held, perQueue] = await Promise.all([
        fair.heldCount(),
        Promise.all(allQueues().map((queue) => queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'))),
      ]);
      const stats: QueueStats = { waiting: held, delayed: 0, active: 0 };
      for (const counts of perQueue) {
        stats.waiting += (counts.waiting ?? 0) + (counts.prioritized ?? 0);
        stats.delayed += counts.delayed ?? 0;
        stats.active += counts.active ?? 0;
      }
      return stats;
    },

    async ping() {
      if (closing) throw new Error('The queue is closed');
      await store.ping();
    },

    close() {
      closing ??= (async () => {
        await consumer?.stop(0);
        await preparing?.catch(() => undefined);
        await Promise.all(allQueues().map((queue) => queue.close()));
        await store.close();
      })();
      return closing;
    },
  };
}

function entryOptions(jobId: string, priority: number): JobsOptions {
  return {
    jobId,
    priority,
    removeOnComplete: true,
    removeOnFail: true,
    attempts: NEVER_GIVE_UP,
    backoff: { type: 'fixed', delay: REDELIVERY_DELAY_MS },
  };
}

/**
 * darkroom priorities run from -100 to 100, higher first. BullMQ's run from 1 to 2^21, lower first,
 * and 0 means "none", which BullMQ delivers before every prioritized job, so it is never used.
 */
export function bullmqPriority(priority: number): number {
  return 101 - Math.max(-100, Math.min(100, Math.round(priority)));
}

function finishingMark(turn: number): JobProgress {
  return `finishing:${turn}`;
}

function sooner(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/**
 * Runs a step on an entry that another process may move meanwhile. False when the entry was gone or
 * no longer in the state the step needs (the caller looks again); other failures are thrown.
 */
async function unlessMovedOn(step: () => Promise<void>): Promise<boolean> {
  try {
    await step();
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === ErrorCode.JobNotExist || code === ErrorCode.JobNotInState) return false;
    throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function makeRedisStore(options: BullmqQueueOptions, reportError: (error: unknown) => void): Store {
  // Queue operations share one client that fails commands after its retries, so a request that
  // enqueues reports a Redis outage instead of hanging; workers hold their own connections, which
  // wait out an outage as BullMQ requires.
  const client = new Redis(options.url);
  client.on('error', reportError);
  const prefix = options.prefix === undefined ? {} : { prefix: options.prefix };
  return {
    async prepare() {},
    makeQueue: (name) => new Queue<EntryData, void, string>(name, { connection: client, ...prefix }),
    makeFairShare: (queueName, quantum) => makeRedisFairShare(client, `${options.prefix ?? 'bull'}:${queueName}:darkroom-fair`, quantum),
    makeWorker: (name, processor, settings) =>
      new Worker<EntryData, void, string>(name, processor, {
        connection: { url: options.url, maxRetriesPerRequest: null },
        ...prefix,
        ...settings,
      }),
    async ping() {
      await client.ping();
    },
    async close() {
      // QUIT waits for the server, which a client still trying to reconnect would never reach.
      if (client.status === 'ready') await client.quit();
      else client.disconnect();
    },
  };
}

function makePostgresStore(options: BullmqQueueOptions, reportError: (error: unknown) => void): Store {
  const postgres = withBackend(createPostgresBackend);
  // Queue operations share this pool; each worker gets a pool of its own (plus BullMQ's dedicated
  // LISTEN connection), sized to its concurrency, so busy workers never starve enqueues.
  // BullMQ sets the search path only on pools it builds itself; its tables live in its own schema.
  const pool = new pg.Pool({ connectionString: options.url, options: `-c search_path=${DEFAULT_SCHEMA}` });
  pool.on('error', reportError);
  return {
    async prepare() {
      // BullMQ only checks its schema version on connect; creating and upgrading it is explicit.
      const client = await pool.connect();
      try {
        await runMigrations(client);
      } finally {
        client.release();
      }
    },
    makeQueue: (name) => new postgres.Queue<EntryData, void, string>(name, { connection: pool }),
    makeFairShare: (queueName, quantum) => makePostgresFairShare(pool, queueName, quantum),
    makeWorker: (name, processor, settings) =>
      new postgres.Worker<EntryData, void, string>(name, processor, {
        connection: { connectionString: options.url, max: settings.concurrency + 2 },
        ...settings,
      }),
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}
