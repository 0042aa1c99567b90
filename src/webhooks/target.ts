import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { WEBHOOK_URL_MAX_LENGTH } from '../core/request.ts';

/** Every address a host name resolves to (dns.lookup with `all`). */
export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** A webhook target darkroom will not call. `permanent`: asking again will not change the answer. */
export class WebhookTargetError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'WebhookTargetError';
  }
}

export interface PinnedAddress {
  address: string;
  family: 4 | 6;
}

const RANGE_NAMES: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private address',
  linkLocal: 'a link-local address (where cloud metadata services answer)',
  uniqueLocal: 'a unique-local address',
  carrierGradeNat: 'a shared (carrier-grade NAT) address',
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  multicast: 'a multicast address',
};


/**
 * What kind of address `address` is when webhooks may not go there ("a loopback address"), or null
 * when they may. Only global unicast addresses may: everything else (loopback, RFC 1918, link-local
 * and so the metadata services, unique-local, carrier-grade NAT, and the ranges that embed another
 * address, like NAT64) could reach the inside of the network darkroom runs in. An IPv4-mapped IPv6
 * address is judged by the IPv4 address it carries.
 */
export function blockedKind(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'an address darkroom cannot judge';
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const range = parsed.range();
  if (range === 'unicast') return null;
  return RANGE_NAMES[range] ?? `a reserved address (${range})`;
}

/** Why `raw` is not a URL webhooks can be sent to, judging its text alone; null when it is one. */
export function urlProblem(raw: string): string | null {
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) return `must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http or https URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http or https URL';
  // Credentials would be stored and shown in the delivery log: a receiver authenticates by signature.
  if (url.username || url.password) return 'must not contain a user name or password';
  if (!url.hostname) return 'must name a host';
  return null;
}

/** The URL's host as an address or a name (WHATWG keeps IPv6 literals in brackets). */
const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** RFC 6761: these names are loopback by definition, whatever a resolver says. */
const isLoopbackName = (host: string) => {
  const name = host.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
};

export interface WebhookTargetsOptions {
  allowPrivate: boolean;
  /** The setting that lifts the guard, named in refusals (default WEBHOOK_ALLOW_PRIVATE). */
  allowSetting?: string;
  resolve?: Resolver;
  /** How long a submission waits for DNS before letting the delivery-time check decide. */
  submitLookupTimeoutMs?: number;
}

export type WebhookTargets = ReturnType<typeof makeWebhookTargets>;

/**
 * The SSRF guard. A URL is judged twice: when a job is submitted (so a bad one is a 400 naming the
 * field), and again before each attempt, on the addresses its name resolves to then. Delivery
 * connects to the very address that was judged (see `pinnedLookup`), so a name that resolves
 * differently a moment later (DNS rebinding) cannot slip past.
 */
export function makeWebhookTargets(options: WebhookTargetsOptions) {
  const resolve = options.resolve ?? systemResolver;
  const submitTimeoutMs = options.submitLookupTimeoutMs ?? 2000;
  const ALLOW_HINT = `which darkroom does not call unless ${options.allowSetting ?? 'WEBHOOK_ALLOW_PRIVATE'}=true`;

  function literalOrNameRefusal(host: string): string | null {
    if (options.allowPrivate) return null;
    const kind = isIP(host) ? blockedKind(host) : isLoopbackName(host) ? RANGE_NAMES.loopback : null;
    return kind ? `points to ${kind}, ${ALLOW_HINT}` : null;
  }

  /** The addresses are not shown: a refusal must not tell a client how darkroom's network resolves names. */
  function resolvedRefusal(addresses: { address: string }[]): string | null {
    for (const { address } of addresses) {
      const kind = blockedKind(address);
      if (kind) return `resolves to ${kind}, ${ALLOW_HINT}`;
    }
    return null;
  }

  return {
    /**
     * For submissions: why `raw` may not receive webhooks, or null. A name that does not resolve now
     * (or not quickly) is accepted: DNS may be down for a moment, and delivery checks again.
     */
    async refusal(raw: string): Promise<string | null> {
      const problem = urlProblem(raw);
      if (problem) return problem;
      const host = hostOf(new URL(raw));
      const refused = literalOrNameRefusal(host);
      if (refused || options.allowPrivate || isIP(host)) return refused;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<null>((done) => (timer = setTimeout(() => done(null), submitTimeoutMs)));
      try {
        const addresses = await Promise.race([resolve(host).catch(() => null), timedOut]);
        return addresses ? resolvedRefusal(addresses) : null;
      } finally {
        clearTimeout(timer);
      }
    },

    /**
     * For deliveries: the one address to connect to. Throws WebhookTargetError: permanent when the
     * target is refused, temporary when its name does not resolve.
     */
    async pin(url: URL): Promise<PinnedAddress> {
      const problem = urlProblem(url.href);
      if (problem) throw new WebhookTargetError(`The URL ${problem}`, true);
      const host = hostOf(url);
      const refused = literalOrNameRefusal(host);
      if (refused) throw new WebhookTargetError(`The URL ${refused}`, true);
      const family = isIP(host);
      if (family === 4 || family === 6) return { address: host, family };
      const addresses = await resolve(host).catch((error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code ?? 'lookup failed';
        throw new WebhookTargetError(`Could not resolve the host (${code})`, false);
      });
      if (!options.allowPrivate) {
        const refusal = resolvedRefusal(addresses);
        if (refusal) throw new WebhookTargetError(`The host ${refusal}`, true);
      }
      const first = addresses[0];
      if (!first) throw new WebhookTargetError('Could not resolve the host (no address)', false);
      return { address: first.address, family: first.family === 6 ? 6 : 4 };
    },
  };
}

/** A `lookup` for http.request that answers with an address judged beforehand, never asking DNS again. */
export function pinnedLookup(pinned: PinnedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
}
