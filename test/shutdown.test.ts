import { afterEach, describe, expect, it } from 'vitest';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

let dr: TestDarkroom | undefined;
afterEach(async () => {
  await dr?.close({ removeData: true });
  dr = undefined;
});

describe('shutdown', () => {
  it('cuts open long polls once the grace period is over instead of waiting for them', async () => {
    dr = await startDarkroom({ SHUTDOWN_GRACE_MS: '300', MOCK_LATENCY_MS: '600000' });
    const { body } = await dr.api('POST', '/api/v1/jobs', { prompt: 'never finishes' });
    // A 60 s long poll: if shutdown waited for it, this test would run past its 30 s limit.
    const longPoll = fetch(`${dr.url}/api/v1/jobs/${body.id}?wait=60`).then(
      (response) => `answered ${response.status}`,
      (error: Error) => `cut: ${error.message}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await dr.darkroom.close();
    expect(await longPoll).toMatch(/^cut: /);
  });
});

