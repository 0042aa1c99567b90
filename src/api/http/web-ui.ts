import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { markRoutesPublic } from './auth.ts';

/** Where `npm run build:ui` (web/vite.config.ts) puts the built UI. */
export const WEB_UI_ROOT = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

export const WEB_UI_NOT_BUILT =
  "darkroom's web UI has not been built. Run `npm run build:ui` (npm install runs it too), then reload this page. The API works without it.";

export interface WebUiOptions {
  /** The build output: index.html and assets/. */
  root: string;
}

/**
 * The web UI at `/`. Only `/` and `/assets/*` are claimed, so every other unknown path is still the
 * API's 404 problem. index.html is read per request rather than once: a missing build answers a
 * message instead of failing the start, and a rebuild shows without a restart. The assets have
 * content hashes in their names, so they can be cached for good; index.html must not be. None of
 * it is secret, and it must stay reachable without an API key: the page is where the key is entered.
 */
export const webUiRoutes: FastifyPluginAsync<WebUiOptions> = async (app, { root }) => {
  markRoutesPublic(app);
  if (!existsSync(join(root, 'index.html'))) app.log.warn({ root }, WEB_UI_NOT_BUILT);

  await app.register(fastifyStatic, {
    root: join(root, 'assets'),
    prefix: '/assets/',
    // The warning above says it better; @fastify/static would only say the directory is missing.
    suppressWarning: true,
    index: false,
    immutable: true,
    maxAge: '365d',
  });

  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    const html = await readFile(join(root, 'index.html')).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!html) return reply.code(503).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(WEB_UI_NOT_BUILT);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html);
  });
};
