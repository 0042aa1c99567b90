import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { BullmqJobQueue } from './bullmq.ts';
import { makeEmbeddedQueue } from './embedded.ts';
import type { JobQueue } from '../core/ports/queue.ts';

/**
 * The queue adapter that configuration names (QUEUE), on the connection it names. BullMQ (and its
 * Redis client) is imported only when configured, so the embedded default never loads it.
 */
export async function makeQueue(config: Config, logger: Logger): Promise<JobQueue | BullmqJobQueue> {
  if (config.queue === 'embedded') return makeEmbeddedQueue({ fairShareQuantum: config.fairShareQuantum });
  // loadConfig refuses QUEUE=redis without REDIS_URL and QUEUE=postgres without DATABASE_URL.
  const url = config.queue === 'redis' ? config.redisUrl : config.databaseUrl;
  if (!url) throw new Error(`QUEUE=${config.queue} has no connection URL`);
  const queueLog = logger.child({ component: 'queue' });
  const { makeBullmqQueue } = await import('./bullmq.ts');
  return makeBullmqQueue({
    backend: config.queue,
    url,
    queueName: config.queueName,
    fairShareQuantum: config.fairShareQuantum,
    groups: config.providerLimits,
    // A worker that died keeps its entries until their lock expires and a stalled check finds them:
    // at most 1.25 × JOB_LEASE_MS. The job leases of its turns have expired by then too.
    lockDurationMs: config.jobLeaseMs,
    stalledIntervalMs: Math.ceil(config.jobLeaseMs / 4),
    onError: (error) => queueLog.error({ err: error }, 'queue connection error'),
  });
}
