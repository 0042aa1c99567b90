import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import sharp from 'sharp';
import type { Browser, BrowserContext, BrowserContextOptions, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerProblemHandlers } from '../src/api/http/problem.ts';
import { WEB_UI_NOT_BUILT, WEB_UI_ROOT, webUiRoutes } from '../src/api/http/web-ui.ts';
import { ProviderError } from '../src/core/errors.ts';
import { makeMockProvider } from '../src/providers/mock/index.ts';
import type { Provider } from '../src/core/ports/provider.ts';
import { hasChromium, launchChromium, NO_CHROMIUM_MESSAGE } from './helpers/browser.ts';
import { startDarkroom, type TestDarkroom } from './helpers/darkroom.ts';

const SCREENSHOTS = 'test-artifacts/ui';
const REFUSAL = 'Upstream refused the prompt: it breaks the content policy';

describe('serving the web UI', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'darkroom-web-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function appServing(uiRoot: string) {
    const app = Fastify();
    registerProblemHandlers(app);
    await app.register(webUiRoutes, { root: uiRoot });
    return app;
  }

  it('answers / with a message naming npm run build:ui when the UI is not built', async () => {
    const app = await appServing(join(root, 'missing'));
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(503);
    expect(page.headers['content-type']).toMatch(/^text\/plain/);
    expect(page.body).toBe(WEB_UI_NOT_BUILT);
    expect(page.body).toContain('npm run build:ui');
    const asset = await app.inject({ method: 'GET', url: '/assets/index.js' });
    expect([asset.statusCode, asset.json().code]).toEqual([404, 'route_not_found']);
    await app.close();
  });

  it('serves index.html uncached and the hashed assets for good; other paths stay 404 problems', async () => {
    mkdirSync(join(root, 'built', 'assets'), { recursive: true });
    writeFileSync(join(root, 'built', 'index.html'), '<!doctype html><div id="app"></div>');
    writeFileSync(join(root, 'built', 'assets', 'index-abc123.js'), 'console.log(1)');
    const app = await appServing(join(root, 'built'));
    const page = await app.inject({ method: 'GET', url: '/' });
    expect([page.statusCode, page.headers['content-type'], page.headers['cache-control']]).toEqual([200, 'text/html; charset=utf-8', 'no-cache']);
    expect(page.body).toContain('<div id="app">');
    const asset = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toMatch(/javascript/);
    expect(asset.headers['cache-control']).toContain('immutable');
    for (const url of ['/assets/nope.js', '/assets/../index.html', '/index.html', '/nope']) {
      const missing = await app.inject({ method: 'GET', url });
      expect([url, missing.statusCode, missing.headers['content-type']]).toEqual([url, 404, 'application/problem+json; charset=utf-8']);
    }
    await app.close();
  });
});

/**
 * Providers for the browser: `mock` takes 800 ms (so a card is seen running well after the page has
 * the job's POST answer), `slow` never finishes by itself (something to cancel), `broken` refuses
 * every job for good.
 */
function testProviders(): Provider[] {
  return [
    makeMockProvider({ latencyMs: { min: 800, max: 800 }, failureRate: 0 }),
    { ...makeMockProvider({ latencyMs: { min: 600_000, max: 600_000 }, failureRate: 0 }), name: 'slow' },
    {
      ...makeMockProvider({ latencyMs: { min: 0, max: 0 }, failureRate: 0 }),
      name: 'broken',
      async submit() {
        throw new ProviderError(REFUSAL, { code: 'rejected', retryable: false });
      },
    },
  ];
}

describe.skipIf(!hasChromium)('web UI in Chromium', () => {
  let dr: TestDarkroom;
  let browser: Browser;
  let contexts: BrowserContext[] = [];
  let pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(WEB_UI_ROOT, 'index.html'))) throw new Error(`${WEB_UI_NOT_BUILT} (npm test does it in pretest)`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    // Enough worker slots that the gallery's thirty filler jobs take two rounds of the mock.
    [dr, browser] = await Promise.all([startDarkroom({ WORKER_CONCURRENCY: '16' }, { providers: testProviders() }), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await dr?.close({ removeData: true });
  });
  // Every test's pages must have run without an uncaught error.
  afterEach(async () => {
    await Promise.all(contexts.map((context) => context.close()));
    contexts = [];
    const errors = pageErrors;
    pageErrors = [];
    expect(errors).toEqual([]);
  });

  /** A fresh browser context (its own localStorage) on the UI, once its live stream is open. */
  async function openUi(options: BrowserContextOptions = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Every status each card has shown, in order: a status held briefly is recorded all the same.
    // (Page code is given as text where it needs browser globals: the tests compile without the DOM's types.)
    await page.addInitScript({
      content: `
        const seen = (window.statusesSeen = {});
        new MutationObserver(() => {
          for (const card of document.querySelectorAll('article[data-job-id]')) {
            const list = (seen[card.dataset.jobId] ??= []);
            if (list.at(-1) !== card.dataset.status) list.push(card.dataset.status);
          }
        }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });`,
    });
    await page.goto(dr.url);
    await page.locator('.live-live').waitFor();
    return page;
  }

  const prompt = (page: Page) => page.getByRole('textbox', { name: 'Prompt' });
  const card = (page: Page, id: string): Locator => page.locator(`article[data-job-id="${id}"]`);
  const cardWithStatus = (page: Page, id: string, status: string) => page.locator(`article[data-job-id="${id}"][data-status="${status}"]`);
  const statusesSeen = (page: Page, id: string): Promise<string[]> => page.evaluate(`window.statusesSeen[${JSON.stringify(id)}] ?? []`);
  const isFocused = (locator: Locator) => locator.evaluate((element) => element === element.ownerDocument.activeElement);

  /** Presses Generate (or runs `submit`) and answers the id(s) of the job(s) the API created. */
  async function generate(page: Page, submit = () => page.getByRole('button', { name: 'Generate' }).click()): Promise<string[]> {
    const created = page.waitForResponse((response) => response.request().method() === 'POST' && /\/api\/v1\/jobs(\/batch)?$/.test(response.url()));
    await submit();
    const response = await created;
    expect(response.status()).toBe(202);
    const body = (await response.json()) as { id?: string; jobs?: { id: string }[] };
    return body.jobs ? body.jobs.map((job) => job.id) : [body.id as string];
  }

  async function imageSize(image: Locator) {
    await image.evaluate((element) => (element.complete ? undefined : new Promise((resolve) => element.addEventListener('load', resolve, { once: true }))));
    return image.evaluate((element) => {
      const box = element.getBoundingClientRect();
      return { naturalWidth: element.naturalWidth, naturalHeight: element.naturalHeight, cssWidth: box.width, cssHeight: box.height };
    });
  }

  async function openAdvanced(page: Page) {
    const details = page.locator('details.advanced');
    if ((await details.getAttribute('open')) === null) await details.locator('summary').click();
  }

  it('Generate: the card goes live and succeeds, its 128×128 thumbnail opens the original at full size', async () => {
    const page = await openUi();
    await prompt(page).fill('a lighthouse at dusk, oil painting');
    await openAdvanced(page);
    await page.getByLabel('Width', { exact: true }).fill('384');
    await page.getByLabel('Height', { exact: true }).fill('256');
    const [id] = (await generate(page)) as [string];
    await cardWithStatus(page, id, 'succeeded').waitFor();
    // Seen running, with a progress bar, before it succeeded: the card followed the job live.
    expect(await statusesSeen(page, id)).toEqual(expect.arrayContaining(['running', 'succeeded']));
    expect((await statusesSeen(page, id)).at(-1)).toBe('succeeded');
    await expect.poll(() => card(page, id).locator('.elapsed').textContent()).toMatch(/^\d+(\.\d)? s$/);

    const thumbnail = card(page, id).getByRole('button', { name: 'a lighthouse at dusk, oil painting' });
    expect(await imageSize(thumbnail.locator('img'))).toEqual({ naturalWidth: 128, naturalHeight: 128, cssWidth: 128, cssHeight: 128 });
    // The gallery has it too, first (newest).
    await page.locator(`.gallery li[data-job-id="${id}"]`).waitFor();
    expect(await page.locator('.gallery li').first().getAttribute('data-job-id')).toBe(id);

    await thumbnail.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await imageSize(dialog.locator('img'))).toMatchObject({ naturalWidth: 384, naturalHeight: 256 });
    expect(await dialog.evaluate((element) => element.contains(element.ownerDocument.activeElement))).toBe(true);
    for (const text of ['a lighthouse at dusk, oil painting', '384×256', 'mock', 'Seed', 'Timings']) expect(await dialog.textContent()).toContain(text);
    for (const name of ['Download', 'Reuse these settings', 'Close']) await dialog.getByRole('button', { name }).waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/lightbox.png` });

    const download = page.waitForEvent('download');
    await dialog.getByRole('button', { name: 'Download' }).click();
    expect((await download).suggestedFilename()).toBe(`darkroom-${id}-0.png`);

    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // Focus is back on the thumbnail that opened it.
    expect(await isFocused(thumbnail)).toBe(true);
  });

  it('Cancel on a running card cancels the job (the API agrees)', async () => {
    const page = await openUi();
    await prompt(page).fill('a job that will be cancelled');
    await openAdvanced(page);
    await page.getByLabel('Provider').selectOption('slow');
    const [id] = (await generate(page)) as [string];
    const running = cardWithStatus(page, id, 'running');
    await running.waitFor();
    await running.getByRole('progressbar').waitFor();
    await running.getByRole('button', { name: 'Cancel' }).click();
    await cardWithStatus(page, id, 'cancelled').waitFor();
    expect(await card(page, id).getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    expect((await dr.api('GET', `/api/v1/jobs/${id}`)).body.status).toBe('cancelled');
  });

  it('a failed job shows its error', async () => {
    const page = await openUi();
    await prompt(page).fill('a job the provider refuses');
    await openAdvanced(page);
    await page.getByLabel('Provider').selectOption('broken');
    const [id] = (await generate(page)) as [string];
    await cardWithStatus(page, id, 'failed').waitFor();
    expect(await card(page, id).textContent()).toContain(REFUSAL);
    expect((await dr.api('GET', `/api/v1/jobs/${id}`)).body.error.message).toBe(REFUSAL);
  });

  it('batch mode makes one card per line; Ctrl+Enter in the prompt submits', async () => {
    const page = await openUi();
    await page.getByRole('checkbox', { name: 'Batch mode' }).check();
    await prompt(page).fill('a red fox in snow\n\na city at night\na bowl of ramen\n');
    const ids = await generate(page, () => prompt(page).press('Control+Enter'));
    expect(ids).toHaveLength(3);
    for (const id of ids) await cardWithStatus(page, id, 'succeeded').waitFor();
    const batchId = (await dr.api('GET', `/api/v1/jobs/${ids[0]}`)).body.batchId as string;
    const batch = await dr.api('GET', `/api/v1/batches/${batchId}`);
    expect(batch.body.jobs.map((job: { request: { prompt: string } }) => job.request.prompt).sort()).toEqual(['a bowl of ramen', 'a city at night', 'a red fox in snow']);
  });

  it('advanced options reach the API; validation errors are shown by their fields', async () => {
    const page = await openUi();
    await prompt(page).fill('two koi in a pond');
    await openAdvanced(page);
    await page.getByLabel('Width', { exact: true }).fill('100');
    await page.getByRole('button', { name: 'Generate' }).click();
    const problem = page.getByRole('alert');
    await problem.waitFor();
    expect(await problem.textContent()).toContain('Width must be multiple of 8');
    expect(await page.getByLabel('Width', { exact: true }).getAttribute('aria-invalid')).toBe('true');

    await page.getByLabel('Negative').fill('blurry, text');
    await page.getByLabel('Size').selectOption({ label: 'Landscape 3:2 (768×512)' });
    expect(await page.getByLabel('Width', { exact: true }).inputValue()).toBe('768');
    await page.getByLabel('Steps').fill('30');
    await page.getByLabel('CFG scale').fill('7.5');
    await page.getByRole('button', { name: 'Random value (dice)' }).click();
    const seed = Number(await page.getByLabel('Seed').inputValue());
    expect(Number.isInteger(seed) && seed >= 0 && seed <= 4294967295).toBe(true);
    await page.getByLabel('Number of images').fill('2');
    await page.getByLabel('Provider').selectOption('mock');
    await page.getByLabel('Style').fill('watercolor');
    const [id] = (await generate(page)) as [string];
    expect(await problem.count()).toBe(0);
    const { body: job } = await dr.api('GET', `/api/v1/jobs/${id}`);
    expect(job.request).toEqual({
      prompt: 'two koi in a pond',
      negativePrompt: 'blurry, text',
      width: 768,
      height: 512,
      steps: 30,
      cfgScale: 7.5,
      seed,
      numImages: 2,
      provider: 'mock',
      style: 'watercolor',
      priority: 0,
    });
    await cardWithStatus(page, id, 'succeeded').waitFor();
    expect(await card(page, id).locator('img').count()).toBe(2);
  });

  it('"Reuse these settings" fills the form from an image of the gallery', async () => {
    const { body: page1 } = await dr.api('GET', '/api/v1/jobs?status=succeeded&limit=100');
    const koi = page1.items.find((job: { request: { prompt: string } }) => job.request.prompt === 'two koi in a pond');
    expect(koi).toBeDefined();
    const page = await openUi();
    // The job's second image: its own seed is the job's plus one.
    await page.locator(`.gallery li[data-job-id="${koi.id}"]`).nth(1).getByRole('button').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Reuse these settings' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await prompt(page).inputValue()).toBe('two koi in a pond');
    expect(await isFocused(prompt(page))).toBe(true);
    const field = (label: string) => page.getByLabel(label, { exact: true }).inputValue();
    expect({
      negative: await field('Negative'),
      width: await field('Width'),
      height: await field('Height'),
      steps: await field('Steps'),
      cfg: await field('CFG scale'),
      seed: await field('Seed'),
      images: await field('Number of images'),
      provider: await field('Provider'),
      style: await field('Style'),
      size: await page.getByLabel('Size').inputValue(),
    }).toEqual({
      negative: 'blurry, text',
      width: '768',
      height: '512',
      steps: '30',
      cfg: '7.5',
      seed: String(koi.request.seed + 1),
      images: '2',
      provider: 'mock',
      style: 'watercolor',
      size: '768x512',
    });
  });

  it('the gallery loads older pages as it is scrolled, newest first', async () => {
    const batch = await dr.api('POST', '/api/v1/jobs/batch', { prompts: Array.from({ length: 30 }, (_, index) => `gallery filler ${index}`), width: 64, height: 64 });
    expect(batch.status).toBe(202);
    for (const job of batch.body.jobs) await dr.waitForJob(job.id);
    const listed: string[] = [];
    for (let cursor: string | null = ''; cursor !== null; ) {
      const { body }: { body: { items: { id: string; images: unknown[] }[]; nextCursor: string | null } } = await dr.api('GET', `/api/v1/jobs?status=succeeded&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      for (const job of body.items) listed.push(...job.images.map(() => job.id));
      cursor = body.nextCursor;
    }

    const page = await openUi({ viewport: { width: 390, height: 844 } });
    const tiles = page.locator('.gallery li');
    await tiles.first().waitFor();
    const firstPage = await tiles.count();
    expect(firstPage).toBeLessThan(listed.length);
    while ((await tiles.count()) < listed.length) {
      await page.locator('.gallery-end').scrollIntoViewIfNeeded();
      await page.waitForTimeout(100);
    }
    expect(await tiles.evaluateAll((items) => items.map((item) => item.getAttribute('data-job-id')))).toEqual(listed);
  });

  it('image to image: picks an init image, moves the strength, and the job shows its input beside its output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'darkroom-ui-inputs-'));
    try {
      const gradient = Buffer.alloc(256 * 192 * 3);
      for (let y = 0; y < 192; y += 1) for (let x = 0; x < 256; x += 1) gradient.set([x, y, 255 - x], (y * 256 + x) * 3);
      const initPath = join(dir, 'harbour.png');
      writeFileSync(initPath, await sharp(gradient, { raw: { width: 256, height: 192, channels: 3 } }).png().toBuffer());
      const notAnImage = join(dir, 'notes.png');
      writeFileSync(notAnImage, 'only text, whatever the name says');

      const page = await openUi();
      await prompt(page).fill('the harbour at night');
      await page.locator('details.image-inputs summary').click();
      await page.getByLabel('Init image', { exact: true }).setInputFiles(initPath);
      const initSlot = page.locator('.drop-zone[data-role="init"]');
      // The size is the server's reading of the upload; the preview is the file itself.
      await initSlot.getByText('256×192 px').waitFor();
      expect(await imageSize(initSlot.getByRole('img', { name: 'Init image preview' }))).toMatchObject({ naturalWidth: 256, naturalHeight: 192 });

      // Strength: 0.75 by default, moved to 0.40 with the keyboard (seven steps of 0.05).
      const slider = page.getByRole('slider', { name: 'Strength' });
      expect(await slider.inputValue()).toBe('0.75');
      await slider.focus();
      for (let step = 0; step < 7; step += 1) await slider.press('ArrowLeft');
      expect(await page.locator('output[for="field-strength"]').textContent()).toBe('0.40');

      // A file that is not an image is refused by the server, said at the picker, and blocks Generate until removed.
      await page.getByLabel('Mask', { exact: true }).setInputFiles(notAnImage);
      await page.locator('.drop-zone[data-role="mask"] .picked-error').waitFor();
      await page.getByRole('button', { name: 'Generate' }).click();
      expect(await page.locator('#form-errors').textContent()).toMatch(/The mask was not uploaded \(.+\)/);
      await page.getByRole('button', { name: 'Remove the mask' }).click();

      await initSlot.getByRole('button', { name: 'Use its size' }).click();
      expect([await page.getByLabel('Width', { exact: true }).inputValue(), await page.getByLabel('Height', { exact: true }).inputValue()]).toEqual(['256', '192']);

      const [id] = (await generate(page)) as [string];
      await cardWithStatus(page, id, 'succeeded').waitFor();
      const { body: job } = await dr.api('GET', `/api/v1/jobs/${id}`);
      expect(job.request).toMatchObject({ prompt: 'the harbour at night', width: 256, height: 192, strength: 0.4 });
      expect(job.inputs).toHaveLength(1);
      expect(job.inputs[0]).toMatchObject({ role: 'init', contentType: 'image/png', width: 256, height: 192, sha256: createHash('sha256').update(readFileSync(initPath)).digest('hex') });

      // The card shows the init image, named by its role, beside the finished output.
      const input = card(page, id).locator('.job-inputs li[data-role="init"]');
      expect(await input.textContent()).toBe('Init image');
      expect(await imageSize(input.getByRole('img', { name: 'Init image (256×192)' }))).toMatchObject({ naturalWidth: 256, naturalHeight: 192, cssWidth: 56, cssHeight: 56 });
      expect(await card(page, id).locator('.card-meta').textContent()).toContain('strength 0.4');
      const output = card(page, id).getByRole('button', { name: 'the harbour at night' });
      expect(await imageSize(output.locator('img'))).toMatchObject({ naturalWidth: 128, naturalHeight: 128 });
      await page.screenshot({ path: `${SCREENSHOTS}/image-to-image.png`, fullPage: true });

      // The lightbox tells it too.
      await output.click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      expect(await imageSize(dialog.locator('.lightbox-image img'))).toMatchObject({ naturalWidth: 256, naturalHeight: 192 });
      expect(await dialog.locator('.job-inputs li[data-role="init"]').textContent()).toBe('Init image · 256×192');
      expect(await dialog.locator('.lightbox-facts').textContent()).toContain('Strength0.4');
      await page.screenshot({ path: `${SCREENSHOTS}/image-to-image-lightbox.png` });

      // Reuse brings the init image back (fetched from its link, uploaded again) with the strength.
      await dialog.getByRole('button', { name: 'Reuse these settings' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await initSlot.getByText('256×192 px').waitFor();
      expect(await slider.inputValue()).toBe('0.4');
      const [again] = (await generate(page)) as [string];
      const { body: second } = await dr.api('GET', `/api/v1/jobs/${again}`);
      expect(second.request.strength).toBe(0.4);
      expect(second.inputs.map((item: { sha256: string }) => item.sha256)).toEqual([job.inputs[0].sha256]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an image dropped on the form is the init image; one dropped on the mask zone is the mask', async () => {
    const solid = (background: string) => sharp({ create: { width: 128, height: 128, channels: 3, background } }).png().toBuffer();
    const [init, mask] = await Promise.all([solid('#3060c0'), solid('#ffffff')]);
    const page = await openUi();
    /** Drops `bytes` as a PNG file named `name` on `target`, as a file dragged from the desktop would. */
    const drop = async (target: Locator, name: string, bytes: Buffer) => {
      const dataTransfer = await page.evaluateHandle(`(() => {
        const bytes = Uint8Array.from(atob(${JSON.stringify(bytes.toString('base64'))}), (char) => char.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], ${JSON.stringify(name)}, { type: 'image/png' }));
        return transfer;
      })()`);
      await target.dispatchEvent('dragover', { dataTransfer });
      await target.dispatchEvent('drop', { dataTransfer });
    };

    await prompt(page).fill('a dropped picture');
    // The section is closed: a drop on the prompt opens it.
    await drop(prompt(page), 'blue.png', init);
    const initSlot = page.locator('.drop-zone[data-role="init"]');
    await initSlot.getByText('128×128 px').waitFor();
    expect(await initSlot.locator('.picked-name').textContent()).toBe('blue.png');
    const maskSlot = page.locator('.drop-zone[data-role="mask"]');
    await drop(maskSlot, 'white.png', mask);
    await maskSlot.getByText('128×128 px').waitFor();
    expect(await initSlot.locator('.picked-name').textContent()).toBe('blue.png');

    await openAdvanced(page);
    await page.getByLabel('Width', { exact: true }).fill('128');
    await page.getByLabel('Height', { exact: true }).fill('128');
    const [id] = (await generate(page)) as [string];
    await cardWithStatus(page, id, 'succeeded').waitFor();
    const { body: job } = await dr.api('GET', `/api/v1/jobs/${id}`);
    expect(job.inputs.map((input: { role: string; sha256: string }) => [input.role, input.sha256])).toEqual([
      ['init', createHash('sha256').update(init).digest('hex')],
      ['mask', createHash('sha256').update(mask).digest('hex')],
    ]);
    expect(await card(page, id).locator('.job-inputs li').evaluateAll((items) => items.map((item) => item.textContent))).toEqual(['Init image', 'Mask']);

    // Removing the init image removes the mask too: a mask needs one.
    await page.getByRole('button', { name: 'Remove the init image' }).click();
    expect(await page.locator('.drop-zone').count()).toBe(1);
    expect(await initSlot.locator('.picked').count()).toBe(0);
  });

  it('fits a phone (390×844) without sideways scrolling, with the form, an init image, cards and the lightbox', async () => {
    const page = await openUi({ viewport: { width: 390, height: 844 }, hasTouch: true });
    await prompt(page).fill(`a very long prompt without spaces ${'x'.repeat(300)}`);
    await page.locator('details.image-inputs summary').click();
    const wide = await sharp({ create: { width: 2048, height: 256, channels: 3, background: '#406080' } }).png().toBuffer();
    await page.getByLabel('Init image', { exact: true }).setInputFiles({ name: `a-long-file-name-${'y'.repeat(80)}.png`, mimeType: 'image/png', buffer: wide });
    await page.getByText('2048×256 px').waitFor();
    const [id] = (await generate(page)) as [string];
    await cardWithStatus(page, id, 'succeeded').waitFor();
    await openAdvanced(page);
    const overflow = () => page.locator('html').evaluate((root) => root.scrollWidth - root.clientWidth);
    expect(await overflow()).toBe(0);
    await page.screenshot({ path: `${SCREENSHOTS}/phone.png`, fullPage: true });
    await card(page, id).getByRole('button').first().click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await overflow()).toBe(0);
    const box = await dialog.boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= 390).toBe(true);
    // The original is shrunk to fit the screen, in proportion.
    const shown = await imageSize(dialog.locator('.lightbox-image img'));
    expect(shown.cssWidth).toBeLessThan(shown.naturalWidth);
    expect(shown.cssWidth / shown.cssHeight).toBeCloseTo(shown.naturalWidth / shown.naturalHeight, 2);
    await page.screenshot({ path: `${SCREENSHOTS}/phone-lightbox.png` });
  });

  it('the theme follows the system, and a choice made with the toggle is remembered', async () => {
    const page = await openUi({ colorScheme: 'dark' });
    const toggle = page.getByRole('button', { name: 'Dark theme' });
    const html = page.locator('html');
    const background = () => html.evaluate((root) => root.ownerDocument.defaultView.getComputedStyle(root).backgroundColor);
    expect(await toggle.getAttribute('aria-pressed')).toBe('true');
    const dark = await background();

    // Cards to show in the screenshots: a job with two images, and one that failed.
    await prompt(page).fill('a lighthouse at dusk, oil painting');
    await openAdvanced(page);
    await page.getByLabel('Number of images').fill('2');
    const [done] = (await generate(page)) as [string];
    await prompt(page).fill('a job the provider refuses');
    await page.getByLabel('Number of images').fill('1');
    await page.getByLabel('Provider').selectOption('broken');
    const [failed] = (await generate(page)) as [string];
    await cardWithStatus(page, done, 'succeeded').waitFor();
    await cardWithStatus(page, failed, 'failed').waitFor();
    await page.locator('details.advanced summary').click();
    const { body: stats } = await dr.api('GET', '/api/v1/queue/stats');
    await page.locator('.status-bar', { hasText: `${stats.jobs.succeeded} succeeded` }).waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}/desktop-dark.png` });

    await toggle.click();
    expect(await toggle.getAttribute('aria-pressed')).toBe('false');
    expect(await html.getAttribute('data-theme')).toBe('light');
    const light = await background();
    expect(light).not.toBe(dark);
    await page.screenshot({ path: `${SCREENSHOTS}/desktop-light.png` });
    await page.reload();
    await page.locator('.live-live').waitFor();
    expect(await html.getAttribute('data-theme')).toBe('light');
    expect(await background()).toBe(light);
  });

  it('is keyboard navigable: tab order reaches the prompt, Generate and the advanced options, with a visible focus ring', async () => {
    const page = await openUi();
    const focused = () =>
      page.locator(':focus').evaluate((element) => ({
        name: (element.getAttribute('aria-label') ?? element.labels?.[0]?.textContent ?? element.textContent?.trim()) as string | undefined,
        outline: element.ownerDocument.defaultView.getComputedStyle(element).outlineStyle as string,
      }));
    const names: string[] = [];
    while (names.at(-1) !== 'Advanced options' && names.length < 15) {
      await page.keyboard.press('Tab');
      const { name, outline } = await focused();
      names.push(name ?? '');
      expect(outline).not.toBe('none');
    }
    expect(names).toEqual(['Dark theme', 'API docs', 'Settings', 'Prompt', 'Batch mode: one job per line', 'Generate', 'Start from an image', 'Advanced options']);
  });
});

if (!hasChromium) console.warn(NO_CHROMIUM_MESSAGE);


describe.skipIf(!hasChromium)('web UI when the API requires a key', () => {
  const ADMIN = 'ui-admin-key-0123456789abcdef';
  let dr: TestDarkroom;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    [dr, browser] = await Promise.all([startDarkroom({ AUTH: 'required', ADMIN_API_KEY: ADMIN, MOCK_LATENCY_MS: '300' }, { apiKey: ADMIN }), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await dr?.close({ removeData: true });
  });

  it('says a key is needed, takes one into the browser’s storage, then generates as that key', async () => {
    const created = await dr.api('POST', '/api/v1/keys', { name: 'browser' });
    expect(created.status).toBe(201);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(dr.url);
      // The page itself needs no key; its first API call answers 401, and the page says what to do.
      await page.getByText('This darkroom needs an API key').waitFor();
      const keyField = page.getByLabel('API key');
      await expect.poll(() => keyField.evaluate((element) => element === element.ownerDocument.activeElement)).toBe(true);
      await page.screenshot({ path: `${SCREENSHOTS}/auth-required.png` });

      // A wrong key is refused with its own message.
      await keyField.fill('dk_not-a-real-key');
      await page.getByRole('button', { name: 'Save key' }).click();
      await page.getByText('refused the saved one').waitFor();

      await keyField.fill(created.body.key);
      await page.getByRole('button', { name: 'Save key' }).click();
      await page.getByText('This darkroom needs an API key').waitFor({ state: 'hidden' });
      // The page reconnects its live stream with the key before it is used.
      await page.locator('.live-live').waitFor();
      expect(await page.evaluate('JSON.stringify(Object.values(localStorage))')).toContain(created.body.key);

      await page.getByRole('textbox', { name: 'Prompt' }).fill('made with a key');
      const response = page.waitForResponse((answer) => answer.request().method() === 'POST' && answer.url().endsWith('/api/v1/jobs'));
      await page.getByRole('button', { name: 'Generate' }).click();
      expect((await response).status(), await (await response).text()).toBe(202);
      const id = ((await (await response).json()) as { id: string }).id;
      await page.locator(`article[data-job-id="${id}"][data-status="succeeded"]`).waitFor();
      const thumbnail = page.locator(`article[data-job-id="${id}"] img`).first();
      await thumbnail.waitFor();
      expect(await thumbnail.evaluate((element) => element.naturalWidth)).toBe(128);

      // The job is the key's: the admin does not see it, the key does.
      expect((await dr.api('GET', `/api/v1/jobs/${id}`)).status).toBe(404);
      expect((await dr.api('GET', `/api/v1/jobs/${id}`, undefined, { authorization: `Bearer ${created.body.key}` })).body.status).toBe('succeeded');

      // A reload keeps the key: no message, the gallery loads.
      await page.reload();
      await page.locator(`.gallery li[data-job-id="${id}"]`).waitFor();
      expect(await page.getByText('This darkroom needs an API key').count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});
