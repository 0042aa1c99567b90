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
export async function makePostgresEventBus(options: { url: string; pool: pg.Pool; logger: Logger }): Promise<EventBus> {
  const local = makeLocalEventBus();
  let listener: pg.Client | undefined;
  let closed = false;

  const connect = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: options.url });
    client.on('notification', (notification) => {
      if (notification.channel !== CHANNEL || !notification.payload) return;
      try {
        void local.publish(JSON.parse(notification.payload) as JobEventMessage);
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
      if (!closed) connect().catch(() => scheduleReconnect());
    }, RECONNECT_DELAY_MS).unref();
  };

  await connect();

  return {
    kind: 'postgres',
    async publish(message) {
      await options.pool.query('select pg_notify($1, $2)', [CHANNEL, JSON.stringify(message)]);
    },
    subscribe: local.subscribe,
    async close() {
      closed = true;
      await listener?.end().catch(() => undefined);
      await local.close();
    },
  };
}
