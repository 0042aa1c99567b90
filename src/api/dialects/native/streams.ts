import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Caller } from '../../../core/caller.ts';
import type { JobService } from '../../../core/job-service.ts';
import type { EventFeed } from '../../../core/event-feed.ts';
import { openSse, type SseStream } from '../../http/sse.ts';
import { presentStreamEvent } from './present.ts';

export interface EventStreamsDeps {
  jobs: JobService;
  feed: EventFeed;
  heartbeatMs: number;
  logger: FastifyBaseLogger;
}

/**
 * The native API's live event streams. Every open stream is tracked so that closing the server
 * ends them: an open response would otherwise hold the server's close until the client left.
 */
export function makeEventStreams(deps: EventStreamsDeps) {
  const open = new Set<SseStream>();

  async function pump(sse: SseStream, caller: Caller, jobId: string | undefined, after: number | undefined): Promise<void> {
    const jobs = deps.jobs.for(caller);
    const owner = caller.owner === null ? undefined : caller.owner;
    const events = deps.feed.follow({ jobId, after, recheckMs: deps.heartbeatMs, signal: sse.signal, owner });
    for await (const row of events) {
      // The links are signed as the event is sent, so they are fresh for this subscriber.
      const image =
        row.type === 'image' ? (await jobs.get(row.jobId)).images.find((candidate) => candidate.index === row.data.index) : undefined;
      const data = presentStreamEvent(row, image);
      await sse.send({ id: row.id, event: data.type, data });
    }
  }

  return {
    /** Streams one job's events (ending after its terminal status) or, without `jobId`, every job's the caller may see. */
    async stream(reply: FastifyReply, caller: Caller, options: { jobId?: string; after?: number }): Promise<FastifyReply> {
      // Fixed before the headers go out: whatever a client does once it sees them comes after this point.
      const after = options.after ?? (options.jobId === undefined ? await deps.feed.lastEventId() : undefined);
      const sse = openSse(reply, { heartbeatMs: deps.heartbeatMs });
      open.add(sse);
      pump(sse, caller, options.jobId, after)
        .catch((error: unknown) => deps.logger.warn({ err: error, jobId: options.jobId }, 'an event stream failed; the client may resume it'))
        .finally(() => {
          open.delete(sse);
          sse.end();
        });
      return reply;
    },

    closeAll(): void {
      for (const sse of open) sse.end();
      open.clear();
    },
  };
}
