import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../core/ports/logger.ts';
import { makeLocalEventBus } from './bus.ts';
import type { EventBus, JobEventMessage } from '../core/ports/events.ts';

const CHANNEL = 'darkroom_job_events';
const RECONNECT_DELAY_MS = 1000;

/**
 * Job events across processes through Postgres LISTEN/NOTIFY: every process publishes with
 * pg_notify on its pool and listens on one dedicated connection, re-established if it drops.
 * Messages are small (ids and names), well under NOTIFY's 8000-byte payload limit.
 */
export async function makePostgresEventBus(options: {
  url: string;
  pool: pg.Pool;
  logger: Logger;
  /** Called when the listener is back after losing its connection: whatever was sent meanwhile is lost. */
  onGap?: () => void;
}): Promise<EventBus> {
  const local = makeLocalEventBus();
  // Tags this process's messages, which come back through LISTEN like everyone else's.
  const origin = randomUUID();
  let listener: pg.Client | undefined;
  let closed = false;

  const connect = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: options.url });
    client.on('notification', (notification) => {
      if (notification.channel !== CHANNEL || !notification.payload) return;
      try {
        const { origin: from, ...message } = JSON.parse(notification.payload) as JobEventMessage & { origin?: string };
        local.deliver(message, from === origin ? 'this-process' : 'another-process');
      } catch (error) {
        options.logger.warn({ err: error }, 'ignored a malformed job event notification');
      }
    });
    client.on('error', (error) => {
      options.logger.warn({ err: error }, 'job event listener lost its connection; reconnecting');
      void client.end().catch(() => undefined);
      scheduleReconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    listener = client;
  };

  const scheduleReconnect = () => {
    if (closed) return;
    listener = undefined;
    setTimeout(() => {
      if (!closed) connect().then(() => options.onGap?.(), () => scheduleReconnect());
    }, RECONNECT_DELAY_MS).unref();
  };

  await connect();

  return {
    kind: 'postgres',
    async publish(message) {
      await options.pool.query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify({ ...message, origin })]);
    },
    subscribe: local.subscribe,
    async close() {
      closed = true;
      await listener?.end().catch(() => undefined);
      await local.close();
    },
  };
}
