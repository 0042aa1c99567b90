import { noInputs } from './helpers/providers.ts';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../src/core/errors.ts';
import { decodeJobToken, baseModelFor, canonicalScheduler, encodeJobToken, interpretJob, interpretJobs, parseAir, parseJobStatus, parseJobStatusCollection, problemText } from '../src/protocols/civitai/orchestration.ts';
import { makeCivitaiProvider, toJobRequest } from '../src/providers/civitai/index.ts';
import { parseRetryAfter, sniffImageType } from '../src/protocols/http/index.ts';
import { providerContract } from './helpers/provider-contract.ts';

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`./fixtures/civitai/${name}`, import.meta.url), 'utf8'));

providerContract({
  provider: 'civitai',
  env: (baseUrl) => ({ CIVITAI_API_URL: baseUrl, CIVITAI_API_TOKEN: 'test-token' }),
  isSubmit: (request) => request.method === 'POST' && request.path === '/v1/consumer/jobs',
  isPoll: (request) => request.method === 'GET' && request.path === '/v1/consumer/jobs',
  maxImages: 4,
  request: { width: 512, height: 512 },
  cancelsUpstream: true,
  upstreamJobId: (token) => {
    const [first] = decodeJobToken(token) ?? [];
    if (!first) throw new Error(`${token} is not a job token`);
    return first;
  },
});

describe('civitai wire format, on real captures', () => {
  it('reads a finished job whose result is a list', () => {
    const status = parseJobStatus(fixture('example-get-job.json'));
    expect(status.jobId).toBe('37d9d863-7928-41c1-bc83-626c00995137');
    expect(status.results).toHaveLength(1);
    const outcome = interpretJob(status);
    expect(outcome.state).toBe('done');
    if (outcome.state !== 'done') return;
    expect(outcome.results[0]).toMatchObject({
      blobKey: 'AC146E9943652A7D6359696406CAFFBF3796C4AD81CD3711502EEBA988663395',
      seed: 1211611058,
      blobUrlExpirationDate: '2025-09-06T19:20:50.6667296Z',
    });
    expect(outcome.results[0]?.blobUrl).toMatch(/^https:\/\/blobs-temp\.sfo3\.digitaloceanspaces\.com\//);
  });

  it('reads a result given as one object (the SDK README answer)', () => {
    const collection = parseJobStatusCollection(fixture('sdk-readme-get-by-token.json'));
    expect(decodeJobToken(collection.token ?? '')).toEqual(['3f071548-46c6-40d5-8e5a-210aa6b8bccc']);
    expect(collection.jobs[0]?.results).toEqual([
      {
        blobKey: '27E0CD13EC240389EFB9A9C25EB29DC3B4AB74A973F132D6A6DB076C8B210570',
        available: true,
        blobUrl: 'https://blobs-temp.sfo3...',
        blobUrlExpirationDate: '2024-03-04T08:00:44.8268514Z',
      },
    ]);
    expect(interpretJobs(collection.jobs).state).toBe('done');
  });

  it('reads a claimed job as running', () => {
    expect(interpretJob(parseJobStatus(fixture('example-get-job-detailed.json')))).toEqual({ state: 'running' });
  });

  it('reads a finished job with a JPEG result from another worker pool', () => {
    const outcome = interpretJob(parseJobStatus(fixture('example-get-job3.json')));
    expect(outcome).toMatchObject({ state: 'done', results: [{ blobKey: 'R75RA6ET94744TP58QFKV6AY10.jpeg', seed: 1113090622 }] });
  });

  it('treats a job that is no longer scheduled and has no image as failed, retryable by resubmitting', () => {
    expect(interpretJob(parseJobStatus(fixture('example-get-job2.json')))).toMatchObject({ state: 'failed', retryable: true });
  });

  it('maps event types and queue positions', () => {
    const base = { jobId: 'j', result: [{ blobKey: 'k', available: false }], scheduled: true };
    const withEvent = (type: string, extra: Record<string, unknown> = {}) => interpretJob(parseJobStatus({ ...base, lastEvent: { type, ...extra } }));
    expect(withEvent('Rejected', { context: { reason: 'prompt refused' } })).toEqual({ state: 'failed', retryable: false, reason: 'Civitai rejected job j: prompt refused' });
    expect(withEvent('Failed')).toMatchObject({ state: 'failed', retryable: true });
    expect(withEvent('Expired')).toMatchObject({ state: 'failed', retryable: true });
    expect(withEvent('Deleted')).toEqual({ state: 'cancelled' });
    expect(withEvent('Updated', { context: { progress: 0.5 } })).toEqual({ state: 'running', progress: 0.5 });
    expect(withEvent('Initialized')).toEqual({ state: 'queued' });
    const queued = parseJobStatus({
      ...base,
      lastEvent: { type: 'Initialized' },
      serviceProviders: { A: { support: 'Available', queuePosition: { precedingJobs: 7 } }, B: { support: 'Available', queuePosition: { precedingJobs: 3 } } },
    });
    expect(interpretJob(queued)).toEqual({ state: 'queued', queuePosition: 3 });
    expect(interpretJobs([])).toMatchObject({ state: 'failed', retryable: true });
  });

  it('refuses answers that are not job statuses', () => {
    expect(() => parseJobStatusCollection({ token: 'x' })).toThrow(/no jobs list/);
    expect(() => parseJobStatus({ result: [] })).toThrow(/no jobId/);
    expect(() => parseJobStatus({ jobId: 'j', result: ['nope'] })).toThrow(/result\[0\]/);
  });

  it('round-trips job tokens and refuses garbage', () => {
    const ids = ['3f071548-46c6-40d5-8e5a-210aa6b8bccc', '37d9d863-7928-41c1-bc83-626c00995137'];
    expect(encodeJobToken(ids.slice(0, 1))).toBe('W3siSm9icyI6WyIzZjA3MTU0OC00NmM2LTQwZDUtOGU1YS0yMTBhYTZiOGJjY2MiXX1d');
    expect(decodeJobToken(encodeJobToken(ids))).toEqual(ids);
    expect(decodeJobToken('not a token!')).toBeNull();
    expect(decodeJobToken(Buffer.from('{"Jobs":["a"]}').toString('base64'))).toBeNull();
    expect(decodeJobToken(Buffer.from('[{"Jobs":[]}]').toString('base64'))).toBeNull();
  });

  it('parses AIRs with the published pattern and derives the base model', () => {
    const input = fixture('example-input2.json') as { model: string; additionalNetworks: Record<string, unknown> };
    expect(parseAir(input.model)).toEqual({ ecosystem: 'sd1', type: 'checkpoint', source: 'civitai', id: '4384', version: '128713' });
    expect(baseModelFor(input.model)).toBe('SD_1_5');
    expect(baseModelFor((fixture('example-input.json') as { model: string }).model)).toBe('SDXL');
    expect(baseModelFor('urn:air:flux1:checkpoint:civitai:618692@691639')).toBe('flux1');
    expect(parseAir('civitai:4201@130072')).toMatchObject({ source: 'civitai', id: '4201', version: '130072' });
    expect(parseAir('not an air')).toBeNull();
    expect(parseAir('urn:air:sdxl:checkpoint:civitai')).toMatchObject({ source: 'checkpoint', id: 'civitai' });
    expect(parseAir('urn:air:sdxl:checkpoint:civitai:1@2 3')).toBeNull();
  });

  it('spells schedulers the Civitai way', () => {
    expect(canonicalScheduler('euler_a')).toBe('EulerA');
    expect(canonicalScheduler('DPM++ 2M Karras')).toBe('DPM2MKarras');
    expect(canonicalScheduler('unipc')).toBe('UniPC');
    expect(canonicalScheduler('warp drive')).toBeUndefined();
  });

  it('reads problem details, ASP.NET validation errors and plain bodies', () => {
    expect(problemText('{"type":"x","title":"Bad Request","status":400,"detail":"params.width is too large","traceId":"t"}')).toBe('Bad Request — params.width is too large');
    expect(problemText('{"title":"One or more validation errors occurred.","errors":{"params.width":["must be <= 2048"]}}')).toBe(
      'One or more validation errors occurred. — params.width: must be <= 2048',
    );
    expect(problemText('{"error":"slow down"}')).toBe('slow down');
    expect(problemText('gateway exploded')).toBe('gateway exploded');
  });

  it('builds the JobRequest the service expects', () => {
    const job = toJobRequest(
      { prompt: 'a fox', width: 768, height: 512, numImages: 3, priority: 0, scheduler: 'euler_a', steps: 25, additionalNetworks: { 'urn:air:sdxl:lora:civitai:1@2': { type: 'lora', strength: 0.8 } } },
      { jobId: 'job-1', deadlineAt: new Date('2030-01-01T00:00:00Z') },
    );
    expect(job).toEqual({
      $type: 'textToImage',
      baseModel: 'SDXL',
      model: 'urn:air:sdxl:checkpoint:civitai:101055@128078',
      params: { prompt: 'a fox', width: 768, height: 512, seed: -1, scheduler: 'EulerA', steps: 25 },
      additionalNetworks: { 'urn:air:sdxl:lora:civitai:1@2': { type: 'Lora', strength: 0.8 } },
      quantity: 3,
      properties: { darkroomJobId: 'job-1' },
      expireAt: '2030-01-01T00:00:00.000Z',
    });
    expect(() => toJobRequest({ prompt: 'x', width: 64, height: 64, numImages: 1, priority: 0, model: 'kandinsky' }, { jobId: 'j', deadlineAt: null })).toThrow(
      /AIR/,
    );
  });

  it('reads Retry-After in seconds and as a date', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });

  it('recognises image bytes by their signature', () => {
    expect(sniffImageType(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]))).toBe('image/png');
    expect(sniffImageType(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('image/jpeg');
    expect(sniffImageType(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBe('image/webp');
    expect(sniffImageType(Buffer.from('hello'))).toBeUndefined();
  });
});

describe('civitai provider against a scripted upstream', () => {
  const token = 'sk-very-secret-token';
  let server: Server;
  let baseUrl: string;
  let answer: (path: string, authorization: string | undefined) => { status: number; headers?: Record<string, string>; body: string | Buffer };

  beforeAll(async () => {
    server = createServer((request, reply) => {
      const { status, headers, body } = answer(request.url ?? '/', request.headers.authorization);
      reply.writeHead(status, headers ?? { 'content-type': 'application/json' });
      reply.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const provider = (maxImageBytes = 1024) => makeCivitaiProvider({ apiUrl: baseUrl, apiToken: token, timeoutMs: 1000, maxImageBytes });
  const context = () => ({ jobId: 'job-1', deadlineAt: null, readInput: noInputs, signal: AbortSignal.timeout(2000) });
  const ref = { providerJobId: encodeJobToken(['3f071548-46c6-40d5-8e5a-210aa6b8bccc']), request: { prompt: 'x', width: 64, height: 64, numImages: 1, priority: 0 } };
  const failure = async (promise: Promise<unknown>) => {
    const error = await promise.then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  };

  it('never puts its API token in an error, even when the upstream echoes it', async () => {
    answer = (_path, authorization) => ({ status: 401, body: JSON.stringify({ title: 'Unauthorized', detail: `token ${authorization} is not valid` }) });
    const error = await failure(provider().submit(ref.request, context()));
    expect(error).toMatchObject({ code: 'unauthorized', retryable: false });
    expect(error.message).not.toContain(token);
    expect(error.message).toContain('[redacted]');
    const check = await provider().check();
    expect(check.ok).toBe(false);
    expect(check.detail).not.toContain(token);
  });

  it('downloads each blob without credentials, keeps the bytes and sniffs the type', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const seen: (string | undefined)[] = [];
    answer = (path, authorization) => {
      if (path.startsWith('/blob')) {
        seen.push(authorization);
        return { status: 200, headers: { 'content-type': 'binary/octet-stream' }, body: png };
      }
      const result = { blobKey: 'K', available: true, blobUrl: `${baseUrl}/blob/K`, blobUrlExpirationDate: new Date(Date.now() + 60_000).toISOString(), seed: 42 };
      return { status: 200, body: JSON.stringify({ token: ref.providerJobId, jobs: [{ jobId: 'j', result, scheduled: false, lastEvent: { type: 'Succeeded' } }] }) };
    };
    const result = await provider().poll(ref, context());
    expect(result.state).toBe('succeeded');
    if (result.state !== 'succeeded') return;
    expect(result.outputs[0]?.bytes.equals(png)).toBe(true);
    expect(result.outputs[0]).toMatchObject({ contentType: 'image/png', seed: 42 });
    expect(seen).toEqual([undefined]);
  });

  it('refuses an image over the size limit for good, and an expired link for now', async () => {
    answer = (path) => {
      if (path.startsWith('/blob')) return { status: 200, headers: { 'content-type': 'image/png' }, body: Buffer.alloc(2048) };
      const expires = path.includes('expired') ? new Date(Date.now() - 1000).toISOString() : new Date(Date.now() + 60_000).toISOString();
      const result = { blobKey: 'K', available: true, blobUrl: `${baseUrl}/blob/K`, blobUrlExpirationDate: expires };
      return { status: 200, body: JSON.stringify({ jobs: [{ jobId: 'j', result }] }) };
    };
    expect(await failure(provider().poll(ref, context()))).toMatchObject({ code: 'image_too_large', retryable: false });
    expect(await failure(provider().poll({ ...ref, providerJobId: 'expired' }, context()))).toMatchObject({ code: 'blob_expired', retryable: true, resubmit: false });
  });

  it('classifies HTTP failures by their retry meaning', async () => {
    answer = () => ({ status: 404, body: '{"title":"Not Found"}' });
    expect(await failure(provider().poll(ref, context()))).toMatchObject({ code: 'upstream_job_not_found', retryable: true, resubmit: true });
    await expect(provider().cancel(ref)).resolves.toBeUndefined();
    answer = () => ({ status: 502, body: 'bad gateway' });
    expect(await failure(provider().poll(ref, context()))).toMatchObject({ code: 'upstream_unavailable', retryable: true, resubmit: false });
    answer = () => ({ status: 200, body: 'not json' });
    expect(await failure(provider().poll(ref, context()))).toMatchObject({ code: 'invalid_response', retryable: true });
    answer = () => ({ status: 200, body: '{"jobs":[]}' });
    expect(await failure(provider().submit(ref.request, context()))).toMatchObject({ code: 'invalid_response', retryable: false });
  });

  it('reports a reachable service and its default model in check()', async () => {
    answer = () => ({ status: 200, body: JSON.stringify({ 'urn:air:sdxl:checkpoint:civitai:101055@128078': { availability: 'Available', workers: 3 } }) });
    expect(await provider().check()).toEqual({ ok: true, detail: 'Civitai accepted the API token; the default model is Available' });
  });
});
