import { readdirSync } from 'node:fs';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { DIALECTS } from '../src/api/dialects/registry.ts';
import type { Dialect, DialectContext } from '../src/api/http/dialect.ts';
import { segmentsOf, type Segment } from '../src/api/http/route-owners.ts';
import { startDarkroom } from './helpers/darkroom.ts';

interface Route {
  dialect: string;
  method: string;
  url: string;
}

/** Every route a dialect registers under its prefix, as Fastify sees it (no handler runs). */
async function routesOf(dialect: Dialect): Promise<Route[]> {
  const app = Fastify();
  const routes: Route[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ dialect: dialect.name, method, url: route.url ?? route.path });
  });
  // Registering routes reads only the input-image limit of the context (routes size their bodies by it); handlers, which read more, never run here.
  const context = { jobs: { inputLimits: { maxBytes: 1_048_576 } } } as unknown as DialectContext;
  await app.register(async (scope) => dialect.routes(scope, context), { prefix: dialect.prefix });
  await app.ready();
  await app.close();
  return routes;
}

/** Whether some path matches both routes: a static segment against a parameter counts unless the parameter's pattern refuses it. */
function overlap(a: Segment[], b: Segment[]): boolean {
  const [first, ...restA] = a;
  const [second, ...restB] = b;
  if (first?.kind === 'rest' || second?.kind === 'rest') return true;
  if (!first || !second) return !first && !second;
  if (first.kind === 'static' && second.kind === 'static' && first.text !== second.text) return false;
  if (first.kind === 'static' && second.kind === 'param' && second.pattern && !second.pattern.test(first.text)) return false;
  if (second.kind === 'static' && first.kind === 'param' && first.pattern && !first.pattern.test(second.text)) return false;
  return overlap(restA, restB);
}

function collisions(routes: Route[]): string[] {
  const found: string[] = [];
  for (const [index, a] of routes.entries()) {
    for (const b of routes.slice(index + 1)) {
      if (a.dialect === b.dialect || a.method !== b.method) continue;
      if (overlap(segmentsOf(a.url), segmentsOf(b.url))) found.push(`${a.method} ${a.url} (${a.dialect}) ~ ${b.url} (${b.dialect})`);
    }
  }
  return found;
}

describe('the dialect registry', () => {
  it('has one descriptor per dialect folder, each folder with the same layout', () => {
    const folders = readdirSync(new URL('../src/api/dialects/', import.meta.url), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(DIALECTS.map((dialect) => dialect.name).sort()).toEqual(folders);
    for (const folder of folders) {
      const files = readdirSync(new URL(`../src/api/dialects/${folder}/`, import.meta.url));
      expect(files, folder).toEqual(expect.arrayContaining(['index.ts', 'routes.ts', 'schemas.ts', 'present.ts', 'errors.ts']));
    }
  });

  it('finds a collision between two dialects when there is one', () => {
    const routes: Route[] = [
      { dialect: 'a', method: 'GET', url: '/v2/resources/*' },
      { dialect: 'b', method: 'GET', url: '/v2/:endpointId/health' },
      { dialect: 'b', method: 'POST', url: '/v2/:endpointId/run' },
    ];
    expect(collisions(routes)).toEqual(['GET /v2/resources/* (a) ~ /v2/:endpointId/health (b)']);
    expect(collisions([routes[1] as Route, { dialect: 'a', method: 'GET', url: '/v2/resources/:air(^[^/]*:[^/]*$)' }])).toEqual([]);
  });

  it('no route of one dialect can answer a path another dialect serves', async () => {
    const routes = (await Promise.all(DIALECTS.map(routesOf))).flat();
    expect(routes.length).toBeGreaterThan(50);
    expect(collisions(routes)).toEqual([]);
  });

  it('sends /v2/resources/{AIR} to Civitai and /v2/resources/… without an AIR to RunPod’s endpoint "resources"', async () => {
    const dr = await startDarkroom({ AUTH: 'off' });
    try {
      const health = await dr.api('GET', '/v2/resources/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ jobs: expect.any(Object), workers: expect.any(Object) });
      const status = await dr.api('GET', '/v2/resources/status/00000000-0000-7000-8000-000000000000');
      expect(status).toMatchObject({ status: 404, body: { error: expect.any(String) } });
      const air = await dr.api('GET', '/v2/resources/urn:air:sd1:lora:civitai:1@1');
      expect(air.status).toBe(404);
      expect(air.headers.get('content-type')).toContain('application/problem+json');
      expect(air.body).toMatchObject({ status: 404, traceId: expect.any(String) });
    } finally {
      await dr.close({ removeData: true });
    }
  });
});
