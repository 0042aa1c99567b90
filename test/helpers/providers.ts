import { ProviderError } from '../../src/core/errors.ts';
import { makeMockProvider } from '../../src/providers/mock/index.ts';
import type { PollResult, Provider, ProviderJobRef } from '../../src/core/ports/provider.ts';

export type SubmitStep = 'ok' | 'retryable' | 'permanent' | 'rate-limited';
export type PollStep = 'pass' | 'worker-failed' | 'network';

/**
 * A provider for tests, through the same port as the real ones: the real mock underneath, with a
 * script of what each submit and poll does, a record of every call, and an optional gate that holds
 * a poll until the test opens it.
 */
export function makeScriptedProvider(options: {
  submits?: SubmitStep[];
  polls?: PollStep[];
  latencyMs?: number;
  name?: string;
}) {
  const inner = makeMockProvider({ latencyMs: { min: options.latencyMs ?? 0, max: options.latencyMs ?? 0 }, failureRate: 0 });
  const submits = [...(options.submits ?? [])];
  const polls = [...(options.polls ?? [])];
  const calls = { submit: 0, poll: 0, cancel: [] as string[] };
  let gate: Promise<void> | undefined;
  let openGate: () => void = () => undefined;
  let onGateReached: () => void = () => undefined;

  const provider: Provider = {
    name: options.name ?? 'mock',
    capabilities: inner.capabilities,
    async submit(request, context) {
      calls.submit += 1;
      const step = submits.shift() ?? 'ok';
      if (step === 'retryable') throw new ProviderError('upstream answered 503', { code: 'upstream_unavailable', retryable: true });
      if (step === 'rate-limited') {
        throw new ProviderError('upstream answered 429', { code: 'rate_limited', retryable: true, retryAfterMs: 40 });
      }
      if (step === 'permanent') throw new ProviderError('upstream refused: prompt violates policy', { code: 'rejected', retryable: false });
      return inner.submit(request, context);
    },
    async poll(job: ProviderJobRef, context): Promise<PollResult> {
      calls.poll += 1;
      const step = polls.shift() ?? 'pass';
      if (step === 'network') throw new ProviderError('connection reset', { code: 'network_error', retryable: true });
      if (step === 'worker-failed') {
        throw new ProviderError('worker crashed', { code: 'worker_failed', retryable: true, resubmit: true });
      }
      const result = await inner.poll(job, context);
      if (gate && result.state === 'succeeded') {
        onGateReached();
        await gate;
      }
      return result;
    },
    async cancel(job) {
      calls.cancel.push(job.providerJobId);
      await inner.cancel(job);
    },
    check: () => inner.check(),
  };

  return {
    provider,
    calls,
    /** Holds the next successful poll; resolves `reached` when a poll is waiting at the gate. */
    holdCompletion() {
      gate = new Promise((resolve) => (openGate = resolve));
      const reached = new Promise<void>((resolve) => (onGateReached = resolve));
      return {
        reached,
        release: () => {
          gate = undefined;
          openGate();
        },
      };
    },
  };
}

/** ProviderContext.readInput for provider tests whose requests carry no input images. */
export const noInputs = async (): Promise<Buffer> => {
  throw new Error('this test gives the provider no input images');
};
