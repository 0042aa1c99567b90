import type { FastifyInstance } from 'fastify';
import type { JobService } from '../../../core/job-service.ts';
import type { ResourceStore } from '../../../core/ports/stores.ts';
import { addJsonParser } from '../../http/json.ts';
import { civitaiJobRoutes } from './jobs.ts';
import { civitaiResourceRoutes } from './resources.ts';

export { decodeJobToken } from '../../../protocols/civitai/orchestration.ts';

export interface CivitaiRoutesOptions {
  jobs: JobService;
  resources: ResourceStore;
  /** Longest `wait=true` holds a request before answering 202 (default 60 s). */
  waitLimitMs?: number;
}

/**
 * The Civitai orchestrator dialect at the service's own paths: v1 consumer jobs and v2 resources,
 * errors as its problem details. Clients built for orchestration.civitai.com only change their base URL.
 */
export async function civitaiRoutes(app: FastifyInstance, options: CivitaiRoutesOptions): Promise<void> {
  // ASP.NET binds JSON from these media types too (the spec lists them for every body).
  addJsonParser(app, /^(?:text\/json|application\/[\w.-]+\+json)\b/);
  await civitaiJobRoutes(app, { jobs: options.jobs, waitLimitMs: options.waitLimitMs ?? 60_000 });
  await civitaiResourceRoutes(app, { resources: options.resources });
}
