import { Darkroom, DarkroomApiError, type JobStatus, type Problem } from 'darkroom/client';

/** What the UI reads of `GET /api/v1/providers` (the server's schema has more). */
export interface ProviderStatus {
  name: string;
  default: boolean;
  healthy: boolean;
}

/** What the UI reads of `GET /api/v1/queue/stats`. */
export interface QueueStats {
  /** The caller's own jobs, unless the caller has the admin scope (then every job). */
  jobs: Record<JobStatus, number>;
  /** Only for the admin scope (and with AUTH=off). */
  workers?: { id: string }[];
}

export interface Api {
  /** The typed client for everything it covers (jobs, batches, cancel). */
  client: Darkroom;
  /** Sends a request to darkroom's API with the current key; the 401 watch included. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  providers(): Promise<ProviderStatus[]>;
  queueStats(): Promise<QueueStats>;
}

export interface ApiOptions {
  /** darkroom's address: where the UI itself is served from. */
  baseUrl: string;
  /** Read at every request, so a key saved in the settings applies at once. */
  apiKey: () => string | undefined;
  /** Told of every 401, whichever request got it. */
  onUnauthorized: () => void;
}

/**
 * One way out to the API for the whole UI. The typed client gets a fetch that adds the key and
 * watches for 401s, rather than an `apiKey`, so that changing the key needs no new client and no
 * call site has to remember the auth check. The key goes only to darkroom's API: image links (S3
 * presigned URLs among them) are capabilities and must not carry it.
 */
export function makeApi(options: ApiOptions): Api {
  const apiPrefix = `${options.baseUrl}/api/`;

  const apiFetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = input instanceof Request ? input.url : String(input);
    const headers = new Headers(init.headers);
    const key = options.apiKey();
    if (key && url.startsWith(apiPrefix)) headers.set('authorization', `Bearer ${key}`);
    const response = await fetch(input, { ...init, headers });
    if (response.status === 401) options.onUnauthorized();
    return response;
  };

  const getJson = async <T>(path: string): Promise<T> => {
    const response = await apiFetch(`${options.baseUrl}${path}`, { headers: { accept: 'application/json' } });
    if (!response.ok) throw await apiError(response);
    return (await response.json()) as T;
  };

  return {
    client: new Darkroom({ baseUrl: options.baseUrl, fetch: apiFetch }),
    fetch: (path, init) => apiFetch(`${options.baseUrl}${path}`, init),
    providers: async () => (await getJson<{ items: ProviderStatus[] }>('/api/v1/providers')).items,
    queueStats: () => getJson<QueueStats>('/api/v1/queue/stats'),
  };
}

/** An error answer as the client's DarkroomApiError, so the UI handles one error type. */
export async function apiError(response: Response): Promise<DarkroomApiError> {
  const text = await response.text().catch(() => '');
  let problem: Problem | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (typeof parsed.detail === 'string') {
      problem = { type: 'about:blank', title: response.statusText, code: 'http_error', ...parsed, status: response.status, detail: parsed.detail };
    }
  } catch {
    // Not JSON (a proxy's error page): described from the status below.
  }
  return new DarkroomApiError(
    response.status,
    problem ?? { type: 'about:blank', title: response.statusText || 'Error', status: response.status, detail: text.slice(0, 300) || `HTTP ${response.status}`, code: 'http_error' },
  );
}

/** A sentence for any error the UI shows: the API's own detail when there is one. */
export function describeError(error: unknown): string {
  if (error instanceof DarkroomApiError) return error.problem.detail;
  if (error instanceof TypeError) return 'darkroom could not be reached. Is it running?';
  return error instanceof Error ? error.message : String(error);
}

export const isUnauthorized = (error: unknown): boolean => error instanceof DarkroomApiError && error.status === 401;
