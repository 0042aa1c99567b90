import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../src/config/index.ts';
import { MAX_ANSWER_BYTES, sendWebhook, type WebhookRequest } from '../src/webhooks/send.ts';
import { makeWebhookSigner } from '../src/webhooks/signing.ts';
import { blockedKind, makeWebhookTargets, urlProblem, type Resolver } from '../src/webhooks/target.ts';
import { answerStatus, startReceiver, type Receiver } from './helpers/receiver.ts';

/** A resolver for names under .test (which no real DNS answers): how the tests make a public-looking name point anywhere. */
const fakeDns =
  (answers: Record<string, string[]>): Resolver =>
  async (hostname) => {
    const addresses = answers[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('which addresses webhooks may go to', () => {
  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['127.8.9.10', 'a loopback address'],
    ['10.0.0.1', 'a private address'],
    ['172.16.5.4', 'a private address'],
    ['192.168.1.1', 'a private address'],
    ['169.254.169.254', 'a link-local address (where cloud metadata services answer)'],
    ['100.100.100.200', 'a shared (carrier-grade NAT) address'],
    ['0.0.0.0', 'an unspecified address'],
    ['255.255.255.255', 'a broadcast address'],
    ['224.0.0.1', 'a multicast address'],
    ['::1', 'a loopback address'],
    ['::', 'an unspecified address'],
    ['fe80::1', 'a link-local address (where cloud metadata services answer)'],
    ['fd00:ec2::254', 'a unique-local address'],
    ['::ffff:127.0.0.1', 'a loopback address'],
    ['::ffff:10.1.2.3', 'a private address'],
    ['64:ff9b::a00:1', 'a reserved address (rfc6052)'],
  ])('%s is %s', (address, kind) => {
    expect(blockedKind(address)).toBe(kind);
  });

  it.each(['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is a public address', (address) => {
    expect(blockedKind(address)).toBeNull();
  });

  it.each([
    ['ftp://hooks.example.test/x', 'must be an http or https URL'],
    ['not a url', 'must be an absolute http or https URL'],
    ['https://user:secret@hooks.example.test/x', 'must not contain a user name or password'],
    [`https://hooks.example.test/${'x'.repeat(2000)}`, 'must be at most 2000 characters'],
  ])('%s: %s', (url, problem) => {
    expect(urlProblem(url)).toBe(problem);
  });
});

describe('the SSRF guard at submission', () => {
  const targets = makeWebhookTargets({
    allowPrivate: false,
    resolve: fakeDns({ 'internal.example.test': ['10.1.2.3'], 'mixed.example.test': ['93.184.215.14', '127.0.0.1'], 'public.example.test': ['93.184.215.14'] }),
  });

  it.each([
    ['http://127.0.0.1/x', /^points to a loopback address, which darkroom does not call unless WEBHOOK_ALLOW_PRIVATE=true$/],
    ['http://10.0.0.1/x', /^points to a private address/],
    ['http://169.254.169.254/latest', /^points to a link-local address/],
    ['http://[::1]/x', /^points to a loopback address/],
    ['http://[::ffff:7f00:1]/x', /^points to a loopback address/],
    ['http://2130706433/x', /^points to a loopback address/],
    ['http://0x7f.1/x', /^points to a loopback address/],
    ['http://localhost:8080/x', /^points to a loopback address/],
    ['http://hooks.localhost/x', /^points to a loopback address/],
    ['http://LocalHost./x', /^points to a loopback address/],
    ['https://internal.example.test/x', /^resolves to a private address/],
    ['https://mixed.example.test/x', /^resolves to a loopback address/],
  ])('refuses %s', async (url, message) => {
    expect(await targets.refusal(url)).toMatch(message);
  });

  it('never says which address a refused name resolved to', async () => {
    expect(await targets.refusal('https://internal.example.test/x')).not.toContain('10.1.2.3');
  });

  it('accepts a public name, and a name DNS cannot answer now (delivery checks it again)', async () => {
    expect(await targets.refusal('https://public.example.test/hook?token=abc')).toBeNull();
    expect(await targets.refusal('https://unknown.example.test/hook')).toBeNull();
  });

  it('does not wait long on a DNS that does not answer', async () => {
    const slow = makeWebhookTargets({ allowPrivate: false, resolve: () => new Promise(() => undefined), submitLookupTimeoutMs: 50 });
    expect(await slow.refusal('https://slow.example.test/x')).toBeNull();
  });

  it('lets everything through with WEBHOOK_ALLOW_PRIVATE=true, but not what is no http(s) URL', async () => {
    const open = makeWebhookTargets({ allowPrivate: true, resolve: fakeDns({}) });
    expect(await open.refusal('http://127.0.0.1/x')).toBeNull();
    expect(await open.refusal('http://169.254.169.254/latest')).toBeNull();
    expect(await open.refusal('file:///etc/passwd')).toBe('must be an http or https URL');
  });
});

describe('the SSRF guard at delivery (after DNS resolution)', () => {
  const targets = makeWebhookTargets({
    allowPrivate: false,
    resolve: fakeDns({ 'rebound.example.test': ['127.0.0.1'], 'public.example.test': ['93.184.215.14'], 'mapped.example.test': ['::ffff:169.254.169.254'] }),
  });

  it('refuses, for good, a name that resolves to a private address now', async () => {
    await expect(targets.pin(new URL('https://rebound.example.test/x'))).rejects.toMatchObject({
      permanent: true,
      message: expect.stringMatching(/^The host resolves to a loopback address/),
    });
    await expect(targets.pin(new URL('https://mapped.example.test/x'))).rejects.toMatchObject({ permanent: true });
    await expect(targets.pin(new URL('http://169.254.169.254/latest'))).rejects.toMatchObject({ permanent: true });
  });

  it('treats a name that does not resolve as a failure worth retrying', async () => {
    await expect(targets.pin(new URL('https://gone.example.test/x'))).rejects.toMatchObject({ permanent: false, message: 'Could not resolve the host (ENOTFOUND)' });
  });

  it('pins the address it judged', async () => {
    expect(await targets.pin(new URL('https://public.example.test/x'))).toEqual({ address: '93.184.215.14', family: 4 });
  });
});

describe('one webhook attempt over real HTTP', () => {
  let receiver: Receiver;
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
  const body = JSON.stringify({ type: 'job.completed', timestamp: new Date().toISOString(), data: { id: 'x' } });
  /** hooks.example.test exists only in this fake DNS: a delivery that reaches the receiver went to the pinned address. */
  const dns = () => fakeDns({ 'hooks.example.test': ['127.0.0.1'] });
  const allowed = () => makeWebhookTargets({ allowPrivate: true, resolve: dns() });
  const request = (path: string, extra: Partial<WebhookRequest> = {}): WebhookRequest => ({
    url: `http://hooks.example.test:${receiver.port}${path}`,
    body,
    headers: { 'content-type': 'application/json', ...makeWebhookSigner(secret).headers('msg_test', body) },
    timeoutMs: 2000,
    signal: new AbortController().signal,
    ...extra,
  });

  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());

  it('delivers a body the receiver verifies with standardwebhooks', async () => {
    receiver.answerWith(answerStatus(200, 'ok'));
    const outcome = await sendWebhook(request('/signed'), allowed());
    expect(outcome).toMatchObject({ kind: 'delivered', statusCode: 200 });
    const [got] = await receiver.waitFor(1, (entry) => entry.path === '/signed');
    expect(new Webhook(secret).verify(got?.body ?? '', got?.headers as Record<string, string>)).toEqual(JSON.parse(body));
    expect(got?.headers['webhook-id']).toBe('msg_test');
  });

  it('refuses a name that resolves to a loopback address, without connecting', async () => {
    const before = receiver.received.length;
    const outcome = await sendWebhook(request('/refused'), makeWebhookTargets({ allowPrivate: false, resolve: dns() }));
    expect(outcome).toMatchObject({ kind: 'failed', statusCode: null, permanent: true, error: expect.stringMatching(/loopback/) });
    expect(receiver.received.length).toBe(before);
  });

  it('records a redirect as a failure and never follows it', async () => {
    receiver.answerWith((entry, response) => response.writeHead(302, { location: `${receiver.url}/elsewhere` }).end());
    const outcome = await sendWebhook(request('/moved'), allowed());
    expect(outcome).toMatchObject({ kind: 'failed', statusCode: 302, permanent: false, error: 'Answered 302; redirects are not followed' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.received.some((entry) => entry.path === '/elsewhere')).toBe(false);
  });

  it('reads a few KB of a huge error answer and keeps a short excerpt', async () => {
    receiver.answerWith((_entry, response) => {
      response.writeHead(500, { 'content-type': 'text/plain' });
      // 64 MiB, written lazily: darkroom must hang up long before this ends.
      let sent = 0;
      const chunk = Buffer.alloc(65_536, 'e');
      const pump = () => {
        while (sent < 1024 && response.write(chunk)) sent += 1;
        if (sent < 1024) response.once('drain', pump);
        else response.end();
      };
      pump();
    });
    const outcome = await sendWebhook(request('/huge'), allowed());
    expect(outcome.kind).toBe('failed');
    if (outcome.kind !== 'failed') return;
    expect(outcome.statusCode).toBe(500);
    expect(outcome.error).toMatch(/^Answered 500: e+$/);
    expect(outcome.error.length).toBeLessThan(MAX_ANSWER_BYTES);
  });

  it('takes a 2xx on its status line, whatever follows', async () => {
    receiver.answerWith((_entry, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.write('still talking');
    });
    expect(await sendWebhook(request('/chatty', { timeoutMs: 5000 }), allowed())).toMatchObject({ kind: 'delivered', statusCode: 200 });
  });

  it('counts a connection reset as a failure', async () => {
    receiver.answerWith((_entry, response) => response.socket?.destroy());
    expect(await sendWebhook(request('/reset'), allowed())).toMatchObject({ kind: 'failed', statusCode: null, permanent: false, error: 'Connection reset by the receiver' });
  });

  it('gives up on a receiver that never answers at the timeout', async () => {
    receiver.answerWith(() => undefined);
    expect(await sendWebhook(request('/hang', { timeoutMs: 200 }), allowed())).toMatchObject({ kind: 'failed', statusCode: null, error: 'No answer within 200 ms' });
  });

  it('judges an error whose body trickles on its status when the time is up', async () => {
    receiver.answerWith((_entry, response) => {
      response.writeHead(503, { 'content-type': 'text/plain' });
      response.write('busy');
    });
    expect(await sendWebhook(request('/trickle', { timeoutMs: 200 }), allowed())).toMatchObject({ kind: 'failed', statusCode: 503, error: 'Answered 503: busy' });
  });

  it('counts a refused connection as a failure worth retrying', async () => {
    const closed = await startReceiver();
    await closed.close();
    const outcome = await sendWebhook({ ...request('/x'), url: `http://127.0.0.1:${closed.port}/x` }, allowed());
    expect(outcome).toMatchObject({ kind: 'failed', permanent: false, error: 'Connection refused' });
  });

  it('counts a DNS that never answers against the attempt’s timeout', async () => {
    const stuck = makeWebhookTargets({ allowPrivate: true, resolve: () => new Promise(() => undefined) });
    expect(await sendWebhook(request('/x', { timeoutMs: 100 }), stuck)).toMatchObject({ kind: 'failed', statusCode: null, permanent: false, error: 'No address for the host within 100 ms' });
  });

  it('stops at once when aborted (shutdown)', async () => {
    receiver.answerWith(() => undefined);
    const controller = new AbortController();
    const pending = sendWebhook(request('/abort', { timeoutMs: 10_000, signal: controller.signal }), allowed());
    await receiver.waitFor(1, (entry) => entry.path === '/abort');
    controller.abort();
    expect(await pending).toEqual({ kind: 'aborted' });
  });
});

describe('webhook configuration', () => {
  it('has defaults', () => {
    expect(loadConfig({}).webhooks).toEqual({
      secret: undefined,
      retryHours: 24,
      retryBaseDelayMs: 5000,
      retryMaxDelayMs: 3_600_000,
      timeoutMs: 10_000,
      concurrency: 8,
      allowPrivate: false,
    });
  });

  it('refuses a malformed secret without repeating it', () => {
    const secret = 'whsec_tooshort';
    expect(() => loadConfig({ WEBHOOK_SECRET: secret })).toThrow(/WEBHOOK_SECRET must be "whsec_" followed by the base64 of 24 to 64 random bytes/);
    try {
      loadConfig({ WEBHOOK_SECRET: secret });
    } catch (error) {
      expect(String(error)).not.toContain(secret);
    }
    expect(() => loadConfig({ WEBHOOK_SECRET: `whsec_${Buffer.alloc(32).toString('base64')}` })).not.toThrow();
  });

  it.each([
    [{ WEBHOOK_RETRY_HOURS: '-1' }, /WEBHOOK_RETRY_HOURS="-1" must be a whole number from 0 to 720/],
    [{ WEBHOOK_TIMEOUT_MS: '10' }, /WEBHOOK_TIMEOUT_MS="10" must be a whole number from 100 to 300000/],
    [{ WEBHOOK_CONCURRENCY: '0' }, /WEBHOOK_CONCURRENCY="0" must be a whole number from 1 to 1000/],
    [{ WEBHOOK_ALLOW_PRIVATE: 'maybe' }, /WEBHOOK_ALLOW_PRIVATE="maybe" must be true or false/],
    [{ WEBHOOK_RETRY_BASE_DELAY_MS: '5000', WEBHOOK_RETRY_MAX_DELAY_MS: '10' }, /WEBHOOK_RETRY_MAX_DELAY_MS must not be smaller than WEBHOOK_RETRY_BASE_DELAY_MS/],
  ])('refuses %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
