import { afterEach, describe, expect, it } from 'vitest';
import { toGenerationUuid } from '../src/api/dialects/fusionbrain/ids.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

let dr: TestDarkroom | undefined;
afterEach(async () => {
  await dr?.close({ removeData: true });
  dr = undefined;
});

describe('Fusion Brain dialect: a finished result is handed out once', () => {
  it('answers DONE to exactly one of several simultaneous reads', async () => {
    dr = await startDarkroom({ MOCK_LATENCY_MS: '0' });
    const form = new FormData();
    form.append('pipeline_id', (await (await fetch(`${dr.url}/key/api/v1/pipelines`)).json() as { id: string }[])[0]!.id);
    form.append('params', new Blob([JSON.stringify({ type: 'GENERATE', numImages: 1, width: 256, height: 256, generateParams: { query: 'read me once' } })], { type: 'application/json' }));
    const run = (await (await fetch(`${dr.url}/key/api/v1/pipeline/run`, { method: 'POST', body: form })).json()) as { uuid: string };
    const jobId = (await dr.api('GET', '/api/v1/jobs?limit=1')).body.items[0].id as string;
    expect(run.uuid).toBe(toGenerationUuid(jobId));
    await dr.waitForJob(jobId);

    const reads = await Promise.all(Array.from({ length: 5 }, () => fetch(`${dr!.url}/key/api/v1/pipeline/status/${run.uuid}`)));
    const statuses = reads.map((response) => response.status).sort();
    expect(statuses).toEqual([200, 404, 404, 404, 404]);
    const done = reads.find((response) => response.status === 200)!;
    expect(((await done.json()) as { status: string; result: { files: string[] } }).result.files).toHaveLength(1);
  });
});
