import { EventEmitter } from 'node:events';
import type { EventBus } from '../core/ports/events.ts';

/** One process (embedded mode): an EventEmitter. */
export function makeLocalEventBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    kind: 'local',
    async publish(message) {
      emitter.emit('event', message);
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
