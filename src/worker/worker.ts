import { hostname } from 'node:os';
import type { Logger } from '../core/ports/logger.ts';
import type { JobStore } from '../core/ports/job-store.ts';
import type { Consumer, JobQueue } from '../core/ports/queue.ts';
import type { Pipeline } from './pipeline.ts';

export interface WorkerDeps {
  id: string;
  queue: JobQueue;
  pipeline: Pipeline;
  repo: JobStore;
  concurrency: number;
  logger: Logger;
  heartbeatMs?: number;
}

export interface Worker {
  readonly id: string;
  start(): Promise<void>;
  /** Stops claiming work and waits up to `graceMs` for running turns. Idempotent. */
  stop(graceMs: number): Promise<void>;
}

/** Feeds queue deliveries to the pipeline and announces itself (heartbeat row) for queue stats. */
export function makeWorker(deps: WorkerDeps): Worker {
  const heartbeatMs = deps.heartbeatMs ?? 5000;
  const identity = { id: deps.id, host: hostname(), pid: process.pid, concurrency: deps.concurrency };
  let consumer: Consumer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;

  const beat = () =>
    deps.repo.heartbeat(identity).catch((error: unknown) => deps.logger.warn({ err: error }, 'worker heartbeat failed'));

  return {
    id: deps.id,
    async start() {
      if (consumer) return;
      await deps.repo.heartbeat(identity);
      timer = setInterval(beat, heartbeatMs);
      timer.unref();
      consumer = deps.queue.consume(deps.pipeline.run, {
        concurrency: deps.concurrency,
        onError: (error, jobId) => deps.logger.error({ err: error, jobId }, 'job turn failed; it will be delivered again'),
      });
    },
    stop(graceMs) {
      stopping ??= (async () => {
        clearInterval(timer);
        await consumer?.stop(graceMs);
        await deps.repo.removeWorker(deps.id).catch(() => undefined);
      })();
      return stopping;
    },
  };
}
