import { loadConfig } from '../src/config/index.ts';
import { createDarkroom, type Darkroom } from '../src/main/compose.ts';
import { makeTempDir, type Cleanup } from './lib.ts';

export interface EmbeddedDarkroom {
  darkroom: Darkroom;
  /** http://127.0.0.1:<ephemeral port> */
  url: string;
  close(): Promise<void>;
}

/**
 * A real darkroom in this process: PGlite in a fresh temporary DATA_DIR, an ephemeral port, no logs.
 * The configuration comes only from `env` (never from the shell or a .env file), so runs are comparable.
 */
export async function startEmbedded(cleanup: Cleanup, env: Record<string, string>): Promise<EmbeddedDarkroom> {
  const { path: dataDir, remove: removeDir } = makeTempDir(cleanup, 'embedded');
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...env });
  const darkroom = await createDarkroom(config);
  const closeDarkroom = cleanup.add('close embedded darkroom', () => darkroom.close());
  const url = await darkroom.start();
  return {
    darkroom,
    url,
    async close() {
      await closeDarkroom();
      await removeDir();
    },
  };
}
