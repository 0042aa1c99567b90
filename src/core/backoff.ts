/**
 * Delay before attempt `attempt + 1` after a retryable failure: exponential from `baseMs`, capped at
 * `maxMs`, with "equal jitter" (half fixed, half random) so that jobs failing together spread out.
 */
export function retryDelayMs(attempt: number, policy: { baseMs: number; maxMs: number }, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}

/**
 * Next poll of a running upstream job when the provider gives no hint: about a tenth of the time it
 * has run so far, between 250 ms and 5 s, so short jobs are seen quickly and long ones cost few polls.
 */
export function pollDelayMs(runningForMs: number): number {
  return Math.min(5000, Math.max(250, Math.round(runningForMs / 10)));
}
