import http from 'node:http';
import https from 'node:https';
import { InputFetchError, type InputFetcher } from '../core/ports/inputs.ts';
import { makeWebhookTargets, pinnedLookup, WebhookTargetError } from './target.ts';

/** Redirects followed per fetch; each target is judged again before it is called. */
const MAX_REDIRECTS = 3;

/**
 * Fetches input images from URLs that jobs give, behind the same guard as webhooks: every address
 * (after each redirect) is judged before connecting, and the connection goes to the judged address.
 */
export function makeInputFetcher(options: { allowPrivate: boolean }): InputFetcher {
  const targets = makeWebhookTargets({ allowPrivate: options.allowPrivate, allowSetting: 'ALLOW_PRIVATE_URLS' });

  async function get(url: URL, maxBytes: number, signal: AbortSignal | undefined): Promise<{ redirect: string } | { body: Buffer }> {
    const pinned = await targets.pin(url).catch((error: unknown) => {
      throw error instanceof WebhookTargetError ? new InputFetchError(error.message.replace(/^The URL /, 'the URL ').replace(/^The host /, 'the host ')) : error;
    });
    return new Promise((resolve, reject) => {
      const client = url.protocol === 'https:' ? https : http;
      const outgoing = client.request(url, {
        method: 'GET',
        headers: { accept: 'image/png, image/jpeg, image/webp', 'user-agent': 'darkroom' },
        agent: false,
        lookup: pinnedLookup(pinned),
        maxHeaderSize: 16 * 1024,
        signal,
      });
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        reject(new InputFetchError(signal?.aborted ? 'no answer in time' : `the connection failed (${error.code ?? error.message})`));
      });
      outgoing.on('response', (response) => {
        const status = response.statusCode ?? 0;
        const location = response.headers.location;
        if (status >= 300 && status < 400 && location) {
          response.resume();
          resolve({ redirect: new URL(location, url).href });
          return;
        }
        if (status < 200 || status >= 300) {
          response.resume();
          reject(new InputFetchError(`the server answered ${status}`));
          return;
        }
        const declared = Number(response.headers['content-length']);
        if (declared > maxBytes) {
          outgoing.destroy();
          reject(new InputFetchError(`the image is larger than ${maxBytes} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            outgoing.destroy();
            reject(new InputFetchError(`the image is larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => resolve({ body: Buffer.concat(chunks) }));
        response.on('error', () => reject(new InputFetchError('the answer was cut off')));
      });
      outgoing.end();
    });
  }

  return {
    refusal: targets.refusal,

    async fetch(raw, { maxBytes, signal }) {
      let url = new URL(raw);
      for (let redirects = 0; ; redirects += 1) {
        const answer = await get(url, maxBytes, signal);
        if ('body' in answer) return answer.body;
        if (redirects === MAX_REDIRECTS) throw new InputFetchError(`more than ${MAX_REDIRECTS} redirects`);
        url = new URL(answer.redirect);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputFetchError('a redirect leads to a URL that is not http or https');
      }
    },
  };
}
