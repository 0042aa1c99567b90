import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isTerminal, JOB_STATUSES, type Job } from '../core/job.ts';
import type { Metrics } from '../core/ports/metrics.ts';

export interface PrometheusMetrics extends Metrics {
  /** The Prometheus text exposition of every metric. */
  render(): Promise<string>;
  readonly contentType: string;
}

const JOB_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60];

/**
 * darkroom's metrics in a registry of their own (several darkrooms may share a process, in tests),
 * with Node's default metrics. `queueDepth` reads the shared store at each scrape, so every process
 * reports the same global figure.
 */
export function makePrometheusMetrics(options: {
  queueDepth: () => Promise<Record<string, number>>;
  /** Per configured provider, whether its circuit is open (or half-open), read from the shared store. */
  circuitsOpen?: () => Promise<Record<string, boolean>>;
}): PrometheusMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const jobs = new Counter({ name: 'darkroom_jobs_total', help: 'Jobs that ended, by provider, dialect and final status', labelNames: ['provider', 'dialect', 'status'], registers: [registry] });
  const durations = new Histogram({
    name: 'darkroom_job_duration_seconds',
    help: 'Time of ended jobs by phase: queued (created to first start), upstream (provider calls), images (decode, thumbnail, store), total (created to end)',
    labelNames: ['provider', 'phase'],
    buckets: JOB_BUCKETS,
    registers: [registry],
  });
  const providerErrors = new Counter({ name: 'darkroom_provider_errors_total', help: 'Failed provider calls by class', labelNames: ['provider', 'class'], registers: [registry] });
  const webhooks = new Counter({ name: 'darkroom_webhook_deliveries_total', help: 'Webhook delivery attempts by outcome', labelNames: ['outcome'], registers: [registry] });
  const requests = new Counter({ name: 'darkroom_http_requests_total', help: 'HTTP requests by dialect and status code', labelNames: ['dialect', 'status'], registers: [registry] });
  const requestSeconds = new Histogram({ name: 'darkroom_http_request_duration_seconds', help: 'HTTP request duration by dialect', labelNames: ['dialect'], buckets: HTTP_BUCKETS, registers: [registry] });
  const cost = new Counter({ name: 'darkroom_job_cost_total', help: 'Actual cost of ended jobs on priced providers (PROVIDER_PRICES)', labelNames: ['provider', 'currency'], registers: [registry] });
  const estimated = new Counter({
    name: 'darkroom_job_cost_estimated_total',
    help: 'Estimated cost of the same ended jobs: what budgets were charged at submission, before the actual cost replaced it',
    labelNames: ['provider', 'currency'],
    registers: [registry],
  });
  const removed = new Counter({ name: 'darkroom_retention_removed_total', help: 'What retention removed, by kind (images, jobs, deliveries)', labelNames: ['kind'], registers: [registry] });
  new Gauge({
    name: 'darkroom_queue_depth',
    help: 'Jobs per status in the shared store (the same in every process)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await options.queueDepth();
      for (const status of JOB_STATUSES) this.set({ status }, counts[status] ?? 0);
    },
  });

  const { circuitsOpen } = options;
  if (circuitsOpen) {
    new Gauge({
      name: 'darkroom_provider_circuit_open',
      help: "1 while a provider's circuit is open or half-open (no work goes to it but one probe), 0 while closed; the same in every process",
      labelNames: ['provider'],
      registers: [registry],
      async collect() {
        for (const [provider, open] of Object.entries(await circuitsOpen())) this.set({ provider }, open ? 1 : 0);
      },
    });
  }

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),

    jobFinished(job: Job) {
      if (!isTerminal(job.status)) return;
      jobs.inc({ provider: job.provider, dialect: job.dialect, status: job.status });
      if (job.cost?.actual) cost.inc({ provider: job.provider, currency: job.cost.currency }, job.cost.actual);
      if (job.cost?.estimated) estimated.inc({ provider: job.provider, currency: job.cost.currency }, job.cost.estimated);
      const end = (job.completedAt ?? new Date()).getTime();
      const created = job.createdAt.getTime();
      if (job.startedAt) durations.observe({ provider: job.provider, phase: 'queued' }, Math.max(0, job.startedAt.getTime() - created) / 1000);
      durations.observe({ provider: job.provider, phase: 'upstream' }, job.timings.providerMs / 1000);
      durations.observe({ provider: job.provider, phase: 'images' }, (job.timings.imageMs + job.timings.storageMs) / 1000);
      durations.observe({ provider: job.provider, phase: 'total' }, Math.max(0, end - created) / 1000);
    },
    providerError: (provider, kind) => providerErrors.inc({ provider, class: kind }),
    webhookAttempt: (outcome) => webhooks.inc({ outcome }),
    retentionRemoved: (kind, count) => removed.inc({ kind }, count),
    httpRequest(dialect, status, seconds) {
      requests.inc({ dialect, status: String(status) });
      requestSeconds.observe({ dialect }, seconds);
    },
  };
}
