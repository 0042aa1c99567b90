import { startDarkroom, type TestDarkroom } from './darkroom.ts';
import { startTcpCutter, type TcpCutter } from './tcp-cutter.ts';

export interface TestFleet {
  /** The upstream darkrooms, each serving the fleet's dialect with a mock that takes a second. */
  servers: TestDarkroom[];
  /** One per server, between it and the darkroom under test: `outage` takes that server away. */
  cutters: TcpCutter[];
  /** The darkroom under test, whose provider drives both servers. */
  darkroom: TestDarkroom;
  close(): Promise<void>;
}

/** Two upstream servers behind TCP cutters, and a darkroom whose provider gets their URLs from `env`. */
export async function startFleet(env: (urls: string) => Record<string, string>): Promise<TestFleet> {
  const servers = await Promise.all([startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '1000' }), startDarkroom({ AUTH: 'off', MOCK_LATENCY_MS: '1000' })]);
  const cutters = await Promise.all(servers.map((server) => startTcpCutter({ host: '127.0.0.1', port: Number(new URL(server.url).port) })));
  const urls = cutters.map((cutter) => `http://127.0.0.1:${cutter.port}`).join(',');
  const darkroom = await startDarkroom({ ...env(urls), WORKER_CONCURRENCY: '4' });
  return {
    servers,
    cutters,
    darkroom,
    async close() {
      await darkroom.close({ removeData: true });
      await Promise.all(cutters.map((cutter) => cutter.close()));
      await Promise.all(servers.map((server) => server.close({ removeData: true })));
    },
  };
}

/** The job's provider job id, once its submission has been saved. */
export async function providerJobIdOf(darkroom: TestDarkroom, id: string): Promise<string> {
  for (;;) {
    const providerJobId = (await darkroom.api('GET', `/api/v1/jobs/${id}`)).body.providerJobId as string | null;
    if (providerJobId) return providerJobId;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
