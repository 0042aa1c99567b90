import type { GenerationRequest } from './request.ts';

/**
 * What providers cost, as the operator priced them (PROVIDER_PRICES), and what a job cost. darkroom
 * does not know any price itself: a job on an unpriced provider has no cost (null), not zero.
 */
export type PriceUnit = 'image' | 'megapixel' | 'second';

export interface PriceRule {
  provider: string;
  /** Only jobs of this model; unset: any model. */
  model?: string;
  /** Only jobs of this output size; unset: any size. */
  size?: { width: number; height: number };
  amount: number;
  unit: PriceUnit;
  /** For per-second prices: the upstream seconds an image is expected to take, for estimates. */
  estimatedSeconds: number;
}

export interface Pricing {
  currency: string;
  rules: PriceRule[];
}

export interface JobCost {
  /** At submission, from the request; null when the provider is not priced. */
  estimated: number | null;
  /** When the job ended, from what happened (images made, their pixels, upstream seconds). */
  actual: number | null;
  currency: string;
}

/** Seconds an image is expected to take upstream when a per-second price does not say (`~N`). */
export const DEFAULT_ESTIMATED_SECONDS = 10;

type Priced = Pick<GenerationRequest, 'model' | 'width' | 'height' | 'numImages'>;

/** Money has no more than micro-units here: sums of many jobs stay exact enough and print cleanly. */
const round = (value: number) => Math.round(value * 1e6) / 1e6;

/** The most specific rule of `provider` that fits the request (model and size both count), if any. */
export function priceRuleFor(pricing: Pricing, provider: string, request: Priced): PriceRule | undefined {
  const fits = pricing.rules.filter(
    (rule) =>
      rule.provider === provider &&
      (rule.model === undefined || rule.model === request.model) &&
      (rule.size === undefined || (rule.size.width === request.width && rule.size.height === request.height)),
  );
  const specificity = (rule: PriceRule) => (rule.model === undefined ? 0 : 2) + (rule.size === undefined ? 0 : 1);
  return fits.sort((a, b) => specificity(b) - specificity(a))[0];
}

function costOf(rule: PriceRule, images: { width: number; height: number }[], upstreamSeconds: number): number {
  switch (rule.unit) {
    case 'image':
      return round(rule.amount * images.length);
    case 'megapixel':
      return round(rule.amount * images.reduce((sum, image) => sum + (image.width * image.height) / 1e6, 0));
    case 'second':
      return round(rule.amount * upstreamSeconds);
  }
}

/** What the request is expected to cost on `provider`. */
export function estimateCost(pricing: Pricing, provider: string, request: Priced): JobCost {
  const rule = priceRuleFor(pricing, provider, request);
  const images = Array.from({ length: request.numImages }, () => ({ width: request.width, height: request.height }));
  return { estimated: rule ? costOf(rule, images, rule.estimatedSeconds * request.numImages) : null, actual: null, currency: pricing.currency };
}

/** What a job that ended cost: the images it stored and the upstream time it spent (a failed job may still have cost time). */
export function actualCost(pricing: Pricing, provider: string, request: Priced, outcome: { images: { width: number; height: number }[]; upstreamMs: number }, estimated: JobCost | null): JobCost {
  const rule = priceRuleFor(pricing, provider, request);
  return { estimated: estimated?.estimated ?? null, actual: rule ? costOf(rule, outcome.images, outcome.upstreamMs / 1000) : null, currency: pricing.currency };
}

/**
 * Reads PROVIDER_PRICES: comma-separated `provider=[model:]amount/unit[@WxH][~seconds]`, with unit
 * `image`, `megapixel` or `s`; e.g. `runpod=0.00025/s~30,openai=gpt-image-1:0.04/image@1024x1024,civitai=0.0015/megapixel`.
 * Answers the rules, or the first entry that does not parse.
 */
export function parsePrices(text: string): { rules: PriceRule[] } | { problem: string } {
  const rules: PriceRule[] = [];
  for (const entry of text.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^([a-z0-9_-]+)=(?:([^:=@~/]+):)?(\d+(?:\.\d+)?)\/(image|megapixel|s)(?:@(\d+)x(\d+))?(?:~(\d+(?:\.\d+)?))?$/.exec(entry);
    if (!match) return { problem: `"${entry}" is not provider=[model:]amount/unit[@WxH][~seconds] with unit image, megapixel or s` };
    const [, provider, model, amount, unit, width, height, seconds] = match;
    rules.push({
      provider: provider as string,
      ...(model ? { model } : {}),
      ...(width && height ? { size: { width: Number(width), height: Number(height) } } : {}),
      amount: Number(amount),
      unit: unit === 's' ? 'second' : (unit as PriceUnit),
      estimatedSeconds: seconds ? Number(seconds) : DEFAULT_ESTIMATED_SECONDS,
    });
  }
  return { rules };
}
