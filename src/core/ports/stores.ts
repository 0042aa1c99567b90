/**
 * The smaller stores the core and the HTTP layer need, each implemented in src/db. Every method is
 * atomic on its own; none of them is part of a job's transaction.
 */

/** What a key may do beyond its own jobs. `admin`: keys, queue-wide stats, the admin UI. */
export const KEY_SCOPES = ['admin'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

/** darkroom's API keys start with this marker, so a darkroom key is told apart from other services' tokens. */
export const KEY_PREFIX = 'dk_';
/** The id of the credential ADMIN_API_KEY stands for; not a row, so it cannot be revoked through the API. */
export const BOOTSTRAP_ADMIN_ID = 'admin';

export interface ApiKey {
  id: string;
  name: string;
  /** The key's first characters, shown in lists so a person can tell keys apart without the secret. */
  prefix: string;
  scopes: KeyScope[];
  maxActiveJobs: number | null;
  maxBatchSize: number | null;
  /** The most the key's jobs may cost per day or month (estimated costs, PROVIDER_PRICES); null: no budget. */
  budget: Budget | null;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface Budget {
  amount: number;
  period: 'day' | 'month';
}

export interface NewKey {
  name: string;
  scopes?: KeyScope[];
  maxActiveJobs?: number | null;
  maxBatchSize?: number | null;
  budget?: Budget | null;
}

/** API keys. Only a hash of each secret is kept: `create` answers the secret once, nothing reads it again. */
export interface KeyStore {
  create(input: NewKey): Promise<{ key: ApiKey; secret: string }>;
  /** The live key whose secret this is, or null (unknown or revoked). */
  verify(secret: string): Promise<ApiKey | null>;
  /** Every key, revoked ones included (they say so), oldest first. */
  list(): Promise<ApiKey[]>;
  get(id: string): Promise<ApiKey | null>;
  /** Revokes a live key (effective at once); null when there is no such key, the key as it was when already revoked. */
  revoke(id: string): Promise<ApiKey | null>;
}

export interface ResourceRow {
  air: string;
  data: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

/** The AIR catalogue. Keys are canonical AIRs (the caller canonicalises); documents are kept as given. */
export interface ResourceStore {
  get(air: string): Promise<ResourceRow | null>;
  /** null when the AIR is already catalogued: creating never overwrites. */
  insert(air: string, data: Record<string, unknown>): Promise<ResourceRow | null>;
  /** null when the AIR is not catalogued. */
  replace(air: string, data: Record<string, unknown>): Promise<ResourceRow | null>;
  /** Shallow-merges `patch` into the document; null when the AIR is not catalogued. */
  merge(air: string, patch: Record<string, unknown>): Promise<ResourceRow | null>;
  /** False when the AIR was not catalogued. */
  delete(air: string): Promise<boolean>;
  /** In AIR order; `prefix` keeps AIRs that start with it. */
  list(query: { limit: number; offset: number; prefix?: string }): Promise<{ total: number; items: ResourceRow[] }>;
}

export interface IdempotencyRecord {
  scope: string;
  key: string;
  /** sha256 of method, URL and body bytes: a repeat with another request is refused. */
  fingerprint: string;
  state: 'pending' | 'done';
  claim: string;
  statusCode: number | null;
  contentType: string | null;
  body: string | null;
  createdAt: Date;
}

export interface StoredAnswer {
  statusCode: number;
  contentType: string | null;
  body: string;
}

export interface ClaimRequest {
  scope: string;
  key: string;
  fingerprint: string;
  /** Names the request that holds the claim, so only it can complete or release it. */
  claim: string;
}

/** Idempotency-Key records, aged by the store's own clock so processes with different clocks agree. */
export interface IdempotencyStore {
  /**
   * Takes (scope, key) for this request: true when it is now ours (free, expired, or abandoned by a
   * request that is gone); otherwise someone else holds it: read the record with `find`.
   */
  claim(request: ClaimRequest): Promise<boolean>;
  /** The live record, or null (none, or expired). */
  find(scope: string, key: string): Promise<IdempotencyRecord | null>;
  /** Stores the answer for repeats; only the request holding the claim can. */
  complete(request: ClaimRequest, answer: StoredAnswer): Promise<void>;
  /** Lets the key go (the request failed in a way a repeat may retry). */
  release(request: ClaimRequest): Promise<void>;
  /** Deletes up to `limit` expired records; answers how many. */
  prune(limit: number): Promise<number>;
}

export interface ProviderCheckRecord {
  id: string;
  owner: string | null;
  provider: string;
  state: 'running' | 'done';
  healthy: boolean | null;
  detail: string | null;
  latencyMs: number | null;
  createdAt: Date;
  completedAt: Date | null;
}

/** Provider connection checks run as tasks: written when started, completed when answered. */
export interface ProviderCheckStore {
  insert(row: { id: string; owner: string | null; provider: string }): Promise<ProviderCheckRecord>;
  complete(id: string, outcome: { healthy: boolean; detail: string; latencyMs: number }): Promise<void>;
  get(id: string): Promise<ProviderCheckRecord | null>;
  prune(before: Date): Promise<void>;
}
