import type { JobStreamEvent } from 'darkroom/client';
// The client's SSE parser, from source: the package exports only the client itself.
import { parseEventStream } from '../../src/client/sse.ts';
import { apiError, isUnauthorized, type Api } from './api.ts';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

export interface LiveHandlers {
  onEvent(event: JobStreamEvent): void;
  /** `live` is reported each time a stream opens: events from then on are not missed. */
  onState(state: LiveState): void;
}

const MAX_RETRY_DELAY_MS = 10_000;

/**
 * Follows every job's events over one stream (`GET /api/v1/events`), read with fetch so the API key
 * can be sent (EventSource cannot send headers). One stream for the whole page rather than one per
 * job card: a browser keeps at most six HTTP/1.1 connections per server, and a batch of ten cards
 * each holding a stream would leave none for anything else. A dropped stream is resumed with
 * Last-Event-ID, so nothing is missed or repeated; a 401 stops it until the key changes.
 * Returns a function that stops following.
 */
export function followJobEvents(api: Api, handlers: LiveHandlers): () => void {
  const controller = new AbortController();
  const { signal } = controller;

  void (async () => {
    let lastEventId: number | undefined;
    let failures = 0;
    handlers.onState('connecting');
    while (!signal.aborted) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
        const response = await api.fetch('/api/v1/events', { headers, signal });
        if (!response.ok) throw await apiError(response);
        if (!response.body) throw new Error('The event stream has no body');
        failures = 0;
        handlers.onState('live');
        for await (const message of parseEventStream(response.body)) {
          const event = JSON.parse(message.data) as JobStreamEvent;
          lastEventId = event.id;
          handlers.onEvent(event);
        }
      } catch (error) {
        if (signal.aborted) return;
        if (isUnauthorized(error)) {
          handlers.onState('unauthorized');
          return;
        }
        failures += 1;
      }
      // The server ended the stream (a restart, a proxy's timeout) or it failed: resume after a pause.
      handlers.onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_RETRY_DELAY_MS, 500 * 2 ** failures)));
    }
  })();

  return () => controller.abort();
}
