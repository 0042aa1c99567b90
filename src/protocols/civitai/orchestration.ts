/**
 * The Civitai orchestrator's wire format (v1 consumer jobs), shared by the provider that calls the
 * real service and the dialect that serves it: AIRs, job tokens, JobStatus parsing and what a
 * JobStatus means for a job. Pure functions only, so they are tested against real captures.
 */

/** The published AIR validation pattern (the v2 API's ResourceInfo.air). */
export const AIR_PATTERN =
  '^(?:urn:)?(?:air:)?(?:(?<ecosystem>[a-zA-Z0-9_\\-\\/]+):)?(?:(?<type>[a-zA-Z0-9_\\-\\/]+):)?(?<source>[a-zA-Z0-9_\\-\\/]+):(?<id>[a-zA-Z0-9_\\-\\/\\.]+)(?:@(?<version>[a-zA-Z0-9_\\-\\/.=,]+))?(?:\\.(?<format>[a-zA-Z0-9_\\-]+))?$';
const AIR = new RegExp(AIR_PATTERN);

/** SD XL 1.0 (VAE fix), the model of the service's own examples: used when a request names none. */
export const DEFAULT_MODEL_AIR = 'urn:air:sdxl:checkpoint:civitai:101055@128078';

export interface Air {
  ecosystem?: string;
  type?: string;
  source: string;
  id: string;
  version?: string;
  format?: string;
}

export function parseAir(value: string): Air | null {
  const groups = AIR.exec(value)?.groups;
  if (!groups?.source || !groups.id) return null;
  const air: Air = { source: groups.source, id: groups.id };
  if (groups.ecosystem) air.ecosystem = groups.ecosystem;
  if (groups.type) air.type = groups.type;
  if (groups.version) air.version = groups.version;
  if (groups.format) air.format = groups.format;
  return air;
}

/** An AIR's form, for people. */
export const AIR_FORM = 'urn:air:{ecosystem}:{type}:{source}:{id}@{version}';

/**
 * Why `value` is not an AIR, in words for the person who sent it; undefined when it is one. A long
 * value is shortened, so a message stays one readable line.
 */
export function airMistake(value: string): string | undefined {
  if (parseAir(value)) return undefined;
  const shown = value.length > 100 ? `${value.slice(0, 100)}…` : value;
  return `'${shown}' is not an AIR: expected ${AIR_FORM}, e.g. ${DEFAULT_MODEL_AIR}`;
}

/** Whether `model` is an AIR of a resource hosted by Civitai (the models the Civitai orchestrator runs). */
export function isCivitaiAir(model: string): boolean {
  return parseAir(model)?.source.toLowerCase() === 'civitai';
}

/** The full `urn:air:…` spelling, so `air:x:y` and `urn:air:x:y` name the same resource. */
export function canonicalAir(value: string): string {
  return `urn:air:${value.replace(/^urn:/, '').replace(/^air:/, '')}`;
}

/**
 * The job's `baseModel`, from the AIR's ecosystem. The v1 enum knows only SD_1_5 and SDXL; SDXL
 * derivatives run as SDXL, and other ecosystems are sent as named (the service answers `flux1` itself).
 */
export function baseModelFor(air: string): string | undefined {
  const ecosystem = parseAir(air)?.ecosystem?.toLowerCase();
  if (!ecosystem) return undefined;
  if (ecosystem === 'sd1') return 'SD_1_5';
  if (['sdxl', 'pony', 'illustrious', 'noobai'].includes(ecosystem)) return 'SDXL';
  return ecosystem;
}

export const SCHEDULERS = [
  'EulerA', 'Euler', 'LMS', 'Heun', 'DPM2', 'DPM2A', 'DPM2SA', 'DPM2M', 'DPMSDE', 'DPMFast', 'DPMAdaptive', 'LMSKarras',
  'DPM2Karras', 'DPM2AKarras', 'DPM2SAKarras', 'DPM2MKarras', 'DPMSDEKarras', 'DDIM', 'PLMS', 'UniPC', 'Undefined', 'LCM',
  'DDPM', 'DEIS',
] as const;

const squash = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');
const SCHEDULER_BY_SQUASHED = new Map<string, string>([
  ...SCHEDULERS.map((name) => [squash(name), name] as const),
  ['eulerancestral', 'EulerA'],
  ['keulerancestral', 'EulerA'],
]);

/** Civitai's spelling of a scheduler name (`euler_a`, `DPM++ 2M Karras` …), or undefined when it has none. */
export function canonicalScheduler(name: string): string | undefined {
  return SCHEDULER_BY_SQUASHED.get(squash(name));
}

export const ASSET_TYPES = ['Lora', 'Hypernetwork', 'TextualInversion', 'Lycoris', 'Checkpoint', 'Vae', 'LoCon'] as const;

/** Civitai's spelling of a network type (`lora` → `Lora`), or the name as given when it has none. */
export function canonicalAssetType(name: string): string {
  return ASSET_TYPES.find((type) => type.toLowerCase() === name.toLowerCase()) ?? name;
}

export const JOB_EVENT_TYPES = [
  'Initialized', 'Claimed', 'Rejected', 'LateRejected', 'ClaimExpired', 'Updated', 'Failed', 'Succeeded', 'Expired', 'Deleted',
] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

/**
 * A token names the jobs of one submission: base64 of `[{"Jobs":["<jobId>", …]}]`. Anyone holding
 * the job ids can make one, so it is an address, not a secret.
 */
export function encodeJobToken(jobIds: readonly string[]): string {
  return Buffer.from(JSON.stringify([{ Jobs: jobIds }])).toString('base64');
}

/** The job ids a token names (base64 or base64url), or null when it is not a token. */
export function decodeJobToken(token: string): string[] | null {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(token)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length === 0) return null;
  const ids: string[] = [];
  for (const entry of parsed) {
    const jobs: unknown = isRecord(entry) ? entry.Jobs : undefined;
    if (!Array.isArray(jobs) || !jobs.every((id): id is string => typeof id === 'string' && id.length > 0)) return null;
    ids.push(...jobs);
  }
  return ids.length > 0 ? ids : null;
}

export interface JobResult {
  blobKey: string;
  available: boolean;
  blobUrl?: string;
  blobUrlExpirationDate?: string;
  seed?: number;
}

export interface JobEvent {
  jobId?: string;
  type?: string;
  dateTime?: string;
  provider?: string;
  workerId?: string;
  context?: Record<string, unknown>;
  retryAttempt?: number;
}

export interface QueuePosition {
  precedingJobs?: number;
  precedingCost?: number;
  throughputRate?: number;
  estimatedStartDuration?: string;
  estimatedStartDate?: string;
}

/** A JobStatus as this code reads it: the fields it acts on, with `result` always a list. */
export interface JobStatus {
  jobId: string;
  results: JobResult[];
  lastEvent?: JobEvent;
  /** Lowest `precedingJobs` over the service providers that report a queue position. */
  queuePosition?: number;
  scheduled?: boolean;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const optionalString = (value: unknown) => (typeof value === 'string' ? value : undefined);
const optionalNumber = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** `result` is one object in the SDK's README and a list in real answers: both become a list. */
export function parseResults(result: unknown): JobResult[] {
  if (result === null || result === undefined) return [];
  const items = Array.isArray(result) ? result : [result];
  return items.map((item, index) => {
    if (!isRecord(item)) throw new ProtocolError(`result[${index}] is not an object`);
    const parsed: JobResult = { blobKey: optionalString(item.blobKey) ?? '', available: item.available === true };
    const blobUrl = optionalString(item.blobUrl);
    if (blobUrl) parsed.blobUrl = blobUrl;
    const expires = optionalString(item.blobUrlExpirationDate);
    if (expires) parsed.blobUrlExpirationDate = expires;
    const seed = optionalNumber(item.seed);
    if (seed !== undefined) parsed.seed = seed;
    return parsed;
  });
}

export function parseJobStatus(value: unknown): JobStatus {
  if (!isRecord(value)) throw new ProtocolError('a job status is not an object');
  const jobId = optionalString(value.jobId);
  if (!jobId) throw new ProtocolError('a job status has no jobId');
  const status: JobStatus = { jobId, results: parseResults(value.result) };
  if (isRecord(value.lastEvent)) {
    const event = value.lastEvent;
    status.lastEvent = {
      jobId: optionalString(event.jobId),
      type: optionalString(event.type),
      dateTime: optionalString(event.dateTime),
      provider: optionalString(event.provider),
      workerId: optionalString(event.workerId),
      context: isRecord(event.context) ? event.context : undefined,
      retryAttempt: optionalNumber(event.retryAttempt),
    };
  }
  if (isRecord(value.serviceProviders)) {
    const positions = Object.values(value.serviceProviders)
      .map((provider) => (isRecord(provider) && isRecord(provider.queuePosition) ? optionalNumber(provider.queuePosition.precedingJobs) : undefined))
      .filter((position): position is number => position !== undefined);
    if (positions.length > 0) status.queuePosition = Math.min(...positions);
  }
  if (typeof value.scheduled === 'boolean') status.scheduled = value.scheduled;
  return status;
}

/** A JobStatusCollection (`{token, jobs}`), the answer to submit and to a poll by token. */
export function parseJobStatusCollection(value: unknown): { token?: string; jobs: JobStatus[] } {
  if (!isRecord(value)) throw new ProtocolError('the answer is not a JSON object');
  if (!Array.isArray(value.jobs)) throw new ProtocolError('the answer has no jobs list');
  return { token: optionalString(value.token), jobs: value.jobs.map(parseJobStatus) };
}

export type JobOutcome =
  | { state: 'queued'; queuePosition?: number }
  | { state: 'running'; progress?: number }
  | { state: 'done'; results: (JobResult & { blobUrl: string })[] }
  | { state: 'cancelled' }
  | { state: 'failed'; retryable: boolean; reason: string };

const RUNNING_EVENTS: readonly string[] = ['Claimed', 'Updated', 'Succeeded'];

function failureReason(event: JobEvent | undefined): string | undefined {
  const context = event?.context ?? {};
  return [context.error, context.reason, context.message].find((text): text is string => typeof text === 'string' && text !== '');
}

/**
 * What one job's status means. Done is every result available with a link; Rejected is final;
 * Failed and Expired may succeed if submitted again; Deleted is a cancellation; a job no longer
 * scheduled without its images has stopped for good on this submission.
 */
export function interpretJob(status: JobStatus): JobOutcome {
  const { results, lastEvent } = status;
  if (results.length > 0 && results.every((result) => result.available && result.blobUrl)) {
    return { state: 'done', results: results as (JobResult & { blobUrl: string })[] };
  }
  const type = lastEvent?.type;
  const reason = failureReason(lastEvent);
  switch (type) {
    case 'Rejected':
      return { state: 'failed', retryable: false, reason: `Civitai rejected job ${status.jobId}${reason ? `: ${reason}` : ''}` };
    case 'Failed':
    case 'Expired':
      return { state: 'failed', retryable: true, reason: `Civitai job ${status.jobId} ${type.toLowerCase()}${reason ? `: ${reason}` : ''}` };
    case 'Deleted':
      return { state: 'cancelled' };
  }
  if (status.scheduled === false) {
    return { state: 'failed', retryable: true, reason: `Civitai job ${status.jobId} is no longer scheduled and has no image` };
  }
  if (type && RUNNING_EVENTS.includes(type)) {
    const progress = optionalNumber(lastEvent?.context?.progress);
    return progress !== undefined && progress >= 0 && progress <= 1 ? { state: 'running', progress } : { state: 'running' };
  }
  return status.queuePosition === undefined ? { state: 'queued' } : { state: 'queued', queuePosition: status.queuePosition };
}

/**
 * The jobs of one token as one outcome: a permanent failure beats a retryable one, which beats a
 * cancellation; done only when all are done (their images in job order); running once any started.
 */
export function interpretJobs(statuses: JobStatus[]): JobOutcome {
  if (statuses.length === 0) return { state: 'failed', retryable: true, reason: 'Civitai knows no job under this token' };
  const outcomes = statuses.map(interpretJob);
  const failures = outcomes.filter((outcome) => outcome.state === 'failed');
  const permanent = failures.find((outcome) => !outcome.retryable);
  if (permanent) return permanent;
  if (failures[0]) return failures[0];
  if (outcomes.some((outcome) => outcome.state === 'cancelled')) return { state: 'cancelled' };
  const done = outcomes.filter((outcome) => outcome.state === 'done');
  if (done.length === outcomes.length) return { state: 'done', results: done.flatMap((outcome) => outcome.results) };
  if (done.length > 0 || outcomes.some((outcome) => outcome.state === 'running')) {
    const progress = outcomes.map((outcome) => (outcome.state === 'done' ? 1 : outcome.state === 'running' ? (outcome.progress ?? 0) : 0));
    return { state: 'running', progress: progress.reduce((sum, value) => sum + value, 0) / progress.length };
  }
  const positions = outcomes
    .map((outcome) => (outcome.state === 'queued' ? outcome.queuePosition : undefined))
    .filter((position): position is number => position !== undefined);
  return positions.length > 0 ? { state: 'queued', queuePosition: Math.min(...positions) } : { state: 'queued' };
}

/**
 * A readable reason from an error body: RFC 7807 `title`/`detail` and ASP.NET's `errors` map, or a
 * plain `message`/`error`, or the text itself. Bounded, since it ends up in job errors.
 */
export function problemText(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body.trim().slice(0, 500);
  }
  if (!isRecord(parsed)) return body.trim().slice(0, 500);
  const parts: string[] = [];
  const add = (text: unknown) => {
    if (typeof text === 'string' && text.trim() !== '' && !parts.includes(text.trim())) parts.push(text.trim());
  };
  add(parsed.title);
  add(parsed.detail);
  if (isRecord(parsed.errors)) {
    for (const [field, messages] of Object.entries(parsed.errors)) {
      const list = Array.isArray(messages) ? messages.filter((message) => typeof message === 'string') : [messages];
      add(`${field}: ${list.join(', ')}`);
    }
  }
  if (parts.length === 0) {
    add(parsed.message);
    add(parsed.error);
  }
  return (parts.length > 0 ? parts.join(' — ') : body.trim()).slice(0, 500);
}
