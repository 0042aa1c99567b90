import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/index.ts';

export interface ProcessLogger {
  logger: Logger;
  /** Flushes and closes the log file, when there is one. */
  close(): Promise<void>;
}

/**
 * JSON lines on stdout and, with LOG_FILE, the same lines in a file that pino-roll rotates (by day,
 * hour or size) in a worker thread, keeping LOG_FILE_KEEP old files and a `current.log` link.
 */
export function makeProcessLogger(config: Pick<Config, 'logLevel' | 'logFile'>): ProcessLogger {
  const options = { level: config.logLevel, base: { service: 'darkroom' } };
  const file = config.logFile;
  if (!file) return { logger: pino(options), close: async () => undefined };
  const rotation: Record<string, string> = file.rotate === 'daily' || file.rotate === 'hourly' ? { frequency: file.rotate } : { size: file.rotate };
  const targets: pino.TransportTargetOptions[] = [
    { target: 'pino/file', options: { destination: 1 }, level: config.logLevel },
    { target: 'pino-roll', options: { file: file.path, ...rotation, mkdir: true, symlink: true, limit: { count: file.keep } }, level: config.logLevel },
  ];
  // pino-roll links current.log before it creates the folder.
  mkdirSync(dirname(file.path), { recursive: true });
  const transport = pino.transport({ targets });
  return {
    logger: pino(options, transport),
    async close() {
      const closed = once(transport, 'close');
      transport.end();
      await closed;
    },
  };
}
