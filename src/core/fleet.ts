/**
 * A fleet: several instances of one self-hosted service (ComfyUI, AUTOMATIC1111/Forge) that a
 * provider spreads its jobs over. It keeps who is healthy and how loaded each is; the provider
 * says what load means (its calls in flight, an instance's queue) and reports failures.
 *
 * An instance that fails is left out for `downMs`, then becomes eligible again: the next job sent
 * to it (or the provider's check) is the probe that brings it back.
 */
export interface FleetMember {
  /** The base URL, without credentials: what ids, logs and messages name it by. */
  url: string;
  /** Headers every call to it carries (its credentials); never logged. */
  headers: Record<string, string>;
}

export interface Fleet<M extends FleetMember> {
  readonly members: readonly M[];
  /** The member with `url`, if it is still configured. */
  byUrl(url: string): M | undefined;
  /**
   * The healthy member with the least load (ties: the one picked least recently), or, when every
   * member is down, how long until the first is back.
   */
  pick(load: (member: M) => number): { member: M } | { retryInMs: number };
  markDown(member: M): void;
  markUp(member: M): void;
  isUp(member: M): boolean;
}

export function makeFleet<M extends FleetMember>(members: readonly M[], options: { downMs: number; now?: () => number }): Fleet<M> {
  const now = options.now ?? Date.now;
  const downUntil = new Map<string, number>();
  const lastPicked = new Map<string, number>();
  let picks = 0;
  const isUp = (member: M) => (downUntil.get(member.url) ?? 0) <= now();

  return {
    members,
    byUrl: (url) => members.find((member) => member.url === url),
    pick(load) {
      const up = members.filter(isUp);
      if (up.length === 0) {
        const soonest = Math.min(...members.map((member) => downUntil.get(member.url) ?? 0));
        return { retryInMs: Math.max(0, soonest - now()) };
      }
      const ranked = up
        .map((member) => ({ member, load: load(member), last: lastPicked.get(member.url) ?? -1 }))
        .sort((a, b) => a.load - b.load || a.last - b.last);
      const chosen = (ranked[0] as { member: M }).member;
      lastPicked.set(chosen.url, (picks += 1));
      return { member: chosen };
    },
    markDown(member) {
      downUntil.set(member.url, now() + options.downMs);
    },
    markUp(member) {
      downUntil.delete(member.url);
    },
    isUp,
  };
}

/**
 * One entry of a `*_URLS` list as a fleet member: credentials written into the URL
 * (`http://user:pass@host:7860`) become an HTTP Basic header and leave the URL.
 */
export function fleetMemberOf(raw: string): FleetMember {
  const url = new URL(raw);
  const headers: Record<string, string> = {};
  if (url.username !== '' || url.password !== '') {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  return { url: url.toString().replace(/\/+$/, ''), headers };
}
