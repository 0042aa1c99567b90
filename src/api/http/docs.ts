import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';

const require = createRequire(import.meta.url);

const redocPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>darkroom API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc><script src="/redoc/redoc.standalone.js"></script></body></html>`;

/** `/openapi.json` (generated from the route schemas), Swagger UI at `/docs`, ReDoc at `/redoc`. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/redoc', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html').send(redocPage));
  const bundlePath = require.resolve('redoc/bundles/redoc.standalone.js');
  let bundle: Buffer | undefined;
  app.get('/redoc/redoc.standalone.js', { schema: { hide: true } }, async (_request, reply) => {
    bundle ??= await readFile(bundlePath);
    return reply.type('application/javascript').header('cache-control', 'public, max-age=86400').send(bundle);
  });
}
