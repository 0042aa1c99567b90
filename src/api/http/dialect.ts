import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EventFeed } from '../../core/event-feed.ts';
import type { JobService } from '../../core/job-service.ts';
import type { WebhookDelivery } from '../../core/ports/webhooks.ts';
import type { KeyStore, ResourceStore } from '../../core/ports/stores.ts';
import type { ProviderChecks } from '../../core/provider-checks.ts';
import type { ErrorFormat } from './errors.ts';

/** What every dialect's routes may use. */
export interface DialectContext {
  jobs: JobService;
  /** Live job events (server-sent event routes). */
  feed: EventFeed;
  /** How often an idle event stream gets a heartbeat (SSE_HEARTBEAT_MS). */
  sseHeartbeatMs: number;
  /** How long the OpenAI dialect waits for a job before answering 504 (OPENAI_WAIT_MS). */
  openaiWaitMs: number;
  /** Provider connection checks run as tasks. */
  providerChecks: ProviderChecks;
  /** The AIR catalogue. */
  resources: ResourceStore;
  keys: KeyStore;
}

/** What rendering a webhook body needs of the core. */
export type PayloadSource = Pick<JobService, 'for' | 'viewAt'>;

/**
 * One served API. The app registers each under its prefix in its own scope, with its error format,
 * log component and credential rules; the webhook sender asks it for the body of the deliveries of
 * its jobs.
 */
export interface Dialect {
  /** Stored as each job's `dialect`, and as the webhook format of its jobs when it has `webhookPayload`. */
  readonly name: string;
  /** Path prefix of every route ('' for a service whose paths start at the root). */
  readonly prefix: string;
  /** `component` of its log lines, so one API's traffic can be told apart. */
  readonly logComponent: string;
  readonly errors: ErrorFormat;
  routes(scope: FastifyInstance, context: DialectContext): Promise<void>;
  /**
   * Whether its clients carry the imitated service's own tokens (a Civitai token, a RunPod `rpa_…`
   * key, a Fusion Brain key): with AUTH=optional, a credential that is neither ADMIN_API_KEY nor in
   * darkroom's key format (`dk_…`) then makes the caller a guest, as if none were sent, instead of a
   * 401. A `dk_…` key must still be valid, and AUTH=required still takes darkroom's keys only. False
   * for darkroom's own API, where every credential presented must be valid.
   */
  readonly foreignTokens: boolean;
  /**
   * Where its clients send their key when not as `Authorization: Bearer` (undefined: not there). Read
   * on the requests routed to this dialect, before its own hooks; throws a 401 DarkroomError for a
   * malformed one.
   */
  credential?(request: FastifyRequest): string | undefined;
  /**
   * The body its service POSTs to a job's callback URL, rendered at each attempt (so image links are
   * freshly signed). Dialects without one have their jobs' webhooks sent in darkroom's own format.
   */
  webhookPayload?(delivery: WebhookDelivery, source: PayloadSource): Promise<unknown>;
}

/** The webhook body of one delivery, as JSON text, from the dialect whose format it carries. */
export function makePayloadRenderer(dialects: readonly Dialect[], source: PayloadSource): (delivery: WebhookDelivery) => Promise<string> {
  return async (delivery) => {
    const dialect = dialects.find((candidate) => candidate.name === delivery.format);
    if (!dialect?.webhookPayload) throw new Error(`delivery ${delivery.id} has a format no dialect renders: ${delivery.format}`);
    return JSON.stringify(await dialect.webhookPayload(delivery, source));
  };
}
