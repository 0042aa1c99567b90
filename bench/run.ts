/**
 * `npm run bench`: darkroom's performance in one run, printed as one table.
 *
 *   1. HTTP requests/s of the job API next to a bare Fastify route (autocannon)
 *   2. orchestration overhead per job (total − provider − thumbnail time)
 *   3. end-to-end jobs/s with an instant mock provider
 *   4. thumbnail time: sharp (darkroom's prepareImage) vs Jimp
 *   5. idle RSS of `npm start` next to a bare node
 *   6. production shape: jobs/s of `darkroom api` + 1 or 2 `darkroom worker` children on Postgres and
 *      Redis next to a `darkroom serve` child on PGlite, and the job API's requests/s on each
 *      (skipped when Postgres or Redis is unreachable; see bench/production.ts for the settings)
 *   7. takeover: the drain time of 60 jobs through `darkroom api` + 2 `darkroom worker` children on
 *      the runpod provider (an upstream of 800 ms per job), undisturbed and with one worker SIGKILLed
 *      2 s in (skipped like the production section)
 *   8. failover: end-to-end jobs/s with a runpod>mock fallback chain when the runpod upstream fails
 *      half its calls, next to both healthy
 *
 * `npm run bench -- --only=http,jobs,thumbnail,memory,production,takeover,failover` runs a subset. Progress goes to stderr.
 * Nothing here is imported by the tests.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { benchHttp, type HttpOptions } from './http.ts';
import { benchJobs } from './jobs.ts';
import { benchFailover } from './failover.ts';
import { Cleanup, progress, renderTable, sweepStaleTempDirs, type Row } from './lib.ts';
import { benchMemory } from './memory.ts';
import { benchProduction } from './production.ts';
import { benchTakeover } from './takeover.ts';
import { benchThumbnail } from './thumbnail.ts';

const SECTIONS = ['http', 'jobs', 'thumbnail', 'memory', 'production', 'takeover', 'failover'] as const;
type Section = (typeof SECTIONS)[number];

const HTTP: HttpOptions = { durationSeconds: 5, warmupSeconds: 1, connections: 50 };

function selectedSections(): Set<Section> {
  const { values } = parseArgs({ options: { only: { type: 'string' } }, allowPositionals: false });
  if (values.only === undefined) return new Set(SECTIONS);
  const wanted = values.only.split(',').map((name) => name.trim());
  const unknown = wanted.filter((name) => !(SECTIONS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
  return new Set(wanted as Section[]);
}

async function main(): Promise<void> {
  const sections = selectedSections();
  const cleanup = new Cleanup();
  let interruptedAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interruptedAt !== undefined) {
      // tsx relays a Ctrl-C the child has already seen, so a repeat within a second is the same one.
      if (performance.now() - interruptedAt < 1000) return;
      progress(`${signal} again: exiting without finishing the cleanup`);
      process.exit(130);
    }
    interruptedAt = performance.now();
    progress(`${signal}: cleaning up (again to abort)`);
    setTimeout(() => process.exit(130), 30_000).unref();
    void cleanup.runAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const processors = cpus();
  const header =
    `darkroom bench — node ${process.version}, ${processors.length} CPUs (${processors[0]?.model.trim() ?? 'unknown'}), ` +
    `${process.platform}/${process.arch}, load average ${loadavg().map((load) => load.toFixed(2)).join(' ')}, ${new Date().toISOString()}`;
  console.log(header);
  const swept = sweepStaleTempDirs();
  if (swept > 0) progress(`removed ${swept} temporary director${swept === 1 ? 'y' : 'ies'} left by interrupted bench runs`);

  const started = performance.now();
  const rows: Row[] = [];
  const notes: string[] = [];
  const add = (part: { rows: Row[]; notes: string[] }) => {
    rows.push(...part.rows);
    notes.push(...part.notes);
  };

  try {
    let bareGetRps: number | undefined;
    if (sections.has('http')) {
      const part = await benchHttp(cleanup, HTTP);
      bareGetRps = part.bareGetRps;
      add(part);
    }
    if (sections.has('jobs')) {
      add(
        await benchJobs(cleanup, {
          overheadJobs: 200,
          warmupJobs: 10,
          inFlight: 1,
          throughputJobs: 300,
          referenceJobs: 100,
          workerConcurrency: 4,
          ...(bareGetRps === undefined ? {} : { http: { options: HTTP, bareGetRps } }),
        }),
      );
    }
    if (sections.has('thumbnail')) add(await benchThumbnail({ iterations: 50, warmup: 5 }));
    if (sections.has('memory')) add(await benchMemory(cleanup, { idleMs: 3000 }));
    if (sections.has('production')) {
      add(
        await benchProduction(cleanup, {
          jobs: 300,
          warmupJobs: 20,
          workerConcurrency: 4,
          size: 256,
          http: HTTP,
          overheadJobs: 100,
          scaleOut: { jobs: 24, latencyMs: 1000, workerConcurrency: 2 },
        }),
      );
    }
    if (sections.has('takeover')) {
      add(await benchTakeover(cleanup, { jobs: 60, warmupJobs: 60, upstreamLatencyMs: 800, killAfterMs: 2000, workerConcurrency: 4, size: 256 }));
    }
    if (sections.has('failover')) add(await benchFailover(cleanup, { jobs: 200, warmupJobs: 20, workerConcurrency: 4, size: 256 }));
  } finally {
    await cleanup.runAll();
  }

  console.log('');
  console.log(renderTable(rows));
  console.log('');
  console.log('Ratio = value / reference unless a note says otherwise.');
  for (const note of notes) console.log(`- ${note}`);
  console.log(`Bench took ${((performance.now() - started) / 1000).toFixed(0)} s; load average at the end ${loadavg().map((load) => load.toFixed(2)).join(' ')}.`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
});
