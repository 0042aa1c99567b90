import { EventEmitter } from 'node:events';
import type { EventBus, JobEventMessage, MessageOrigin } from '../core/ports/events.ts';

/** One process (embedded mode): an EventEmitter. */
export function makeLocalEventBus(): EventBus & { deliver(message: JobEventMessage, origin: MessageOrigin): void } {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    kind: 'local',
    async publish(message) {
      emitter.emit('event', message, 'this-process');
    },
    /** Hands subscribers a message that arrived from elsewhere. */
    deliver(message, origin) {
      emitter.emit('event', message, origin);
    },
    subscribe(listener) {
      emitter.on('event', listener);
      return () => emitter.off('event', listener);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}
