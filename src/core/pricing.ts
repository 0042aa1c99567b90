import type { GenerationRequest } from './request.ts';

/**
 * What providers cost, as the operator priced them (PROVIDER_PRICES), and what a job cost. darkroom
 * does not know any price itself: a job on an unpriced provider has no cost (null), not zero.
 */

/** Per million tokens: all input tokens, input text tokens, input image tokens, output tokens. */
export type TokenUnit = 'Mtok-in' | 'Mtok-in-text' | 'Mtok-in-image' | 'Mtok-out';
export type PriceUnit = 'image' | 'megapixel' | 'second' | TokenUnit;

/** One part of a price: `amount` per `unit`. A rule's price is the sum of its terms. */
export interface PriceTerm {
  amount: number;
  unit: PriceUnit;
  /**
   * What the estimate at submission assumes (`~N`): upstream seconds per image for `second`,
   * tokens per image for `Mtok-out`, per input image for `Mtok-in-image`, per job for
   * `Mtok-in-text` and `Mtok-in`. Unset: darkroom's own guess (see estimateCost).
   */
  estimate?: number;
}

export interface PriceRule {
  provider: string;
  /** Only jobs of this model; unset: any model. */
  model?: string;
  /** Only jobs of this output size; unset: any size. */
  size?: { width: number; height: number };
  terms: PriceTerm[];
}

export interface Pricing {
  currency: string;
  rules: PriceRule[];
}

/** Tokens a provider reported for a job (OpenAI's GPT image models report them). */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  /** Of the input tokens, those of the prompt's text and of the input images, when the provider tells them apart. */
  inputTextTokens?: number;
  inputImageTokens?: number;
}

export interface JobCost {
  /** At submission, from the request; null when the provider is not priced. */
  estimated: number | null;
  /** When the job ended, from what happened (images made, their pixels, upstream seconds, tokens). */
  actual: number | null;
  currency: string;
}

/** Seconds an image is expected to take upstream when a per-second price does not say (`~N`). */
export const DEFAULT_ESTIMATED_SECONDS = 10;

/**
 * Tokens of an image of 1024×1024 pixels, scaled by its pixels: what OpenAI counts for a
 * gpt-image-1 output at high quality, the dearest. Estimates err high; the actual cost gives back
 * the difference.
 */
export const IMAGE_TOKENS_PER_1024_SQUARE = 4160;

/** Tokens of an image of `width`×`height` pixels, as darkroom estimates them. */
export const imageTokens = (width: number, height: number) => Math.ceil((IMAGE_TOKENS_PER_1024_SQUARE * width * height) / (1024 * 1024));

/** Tokens of a text, as darkroom estimates them: one per four characters (OpenAI's rule of thumb for English). */
export const textTokens = (text: string) => Math.ceil(text.length / 4);

type Priced = Pick<GenerationRequest, 'model' | 'width' | 'height' | 'numImages'> & Partial<Pick<GenerationRequest, 'prompt' | 'inputs'>>;

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

/** The quantities a price is applied to: made (or expected) images, upstream seconds, tokens. */
interface Quantities {
  images: { width: number; height: number }[];
  seconds: number;
  tokens: Record<TokenUnit, number>;
}

function costOf(rule: PriceRule, quantities: Quantities): number {
  let total = 0;
  for (const term of rule.terms) {
    switch (term.unit) {
      case 'image':
        total += term.amount * quantities.images.length;
        break;
      case 'megapixel':
        total += term.amount * quantities.images.reduce((sum, image) => sum + (image.width * image.height) / 1e6, 0);
        break;
      case 'second':
        total += term.amount * quantities.seconds;
        break;
      default:
        total += (term.amount * quantities.tokens[term.unit]) / 1e6;
    }
  }
  return round(total);
}

/** The tokens a request is expected to take, per unit, from the rule's `~N` or darkroom's guesses. */
function expectedTokens(rule: PriceRule, request: Priced): Record<TokenUnit, number> {
  const given = (unit: TokenUnit) => rule.terms.find((term) => term.unit === unit)?.estimate;
  const inputs = request.inputs ?? [];
  const text = given('Mtok-in-text') ?? textTokens(request.prompt ?? '');
  const perInput = given('Mtok-in-image');
  const image = perInput !== undefined ? perInput * inputs.length : inputs.reduce((sum, input) => sum + imageTokens(input.width, input.height), 0);
  return {
    'Mtok-in': given('Mtok-in') ?? text + image,
    'Mtok-in-text': text,
    'Mtok-in-image': image,
    'Mtok-out': (given('Mtok-out') ?? imageTokens(request.width, request.height)) * request.numImages,
  };
}

/** What the request is expected to cost on `provider`. */
export function estimateCost(pricing: Pricing, provider: string, request: Priced): JobCost {
  const rule = priceRuleFor(pricing, provider, request);
  if (!rule) return { estimated: null, actual: null, currency: pricing.currency };
  const seconds = (rule.terms.find((term) => term.unit === 'second')?.estimate ?? DEFAULT_ESTIMATED_SECONDS) * request.numImages;
  const images = Array.from({ length: request.numImages }, () => ({ width: request.width, height: request.height }));
  return { estimated: costOf(rule, { images, seconds, tokens: expectedTokens(rule, request) }), actual: null, currency: pricing.currency };
}

/** What the job ended with: the images it stored, the upstream time it spent, the tokens its provider reported. */
export interface JobOutcome {
  images: { width: number; height: number }[];
  upstreamMs: number;
  usage?: TokenUsage | null;
}

/**
 * What a job that ended cost: the images it stored, the upstream time it spent (a failed job may
 * still have cost time) and the tokens its provider reported. A job that made images on a
 * token-priced provider that reported no tokens is charged its estimate of them; one that made
 * none, no tokens.
 */
export function actualCost(pricing: Pricing, provider: string, request: Priced, outcome: JobOutcome, estimated: JobCost | null): JobCost {
  const rule = priceRuleFor(pricing, provider, request);
  const cost = { estimated: estimated?.estimated ?? null, currency: pricing.currency };
  if (!rule) return { ...cost, actual: null };
  const { usage } = outcome;
  const tokens: Record<TokenUnit, number> = usage
    ? {
        'Mtok-in': usage.inputTokens,
        'Mtok-in-text': usage.inputTextTokens ?? usage.inputTokens - (usage.inputImageTokens ?? 0),
        'Mtok-in-image': usage.inputImageTokens ?? 0,
        'Mtok-out': usage.outputTokens,
      }
    : outcome.images.length > 0
      ? expectedTokens(rule, request)
      : { 'Mtok-in': 0, 'Mtok-in-text': 0, 'Mtok-in-image': 0, 'Mtok-out': 0 };
  return { ...cost, actual: costOf(rule, { images: outcome.images, seconds: outcome.upstreamMs / 1000, tokens }) };
}

const UNITS: Record<string, PriceUnit> = {
  image: 'image',
  megapixel: 'megapixel',
  s: 'second',
  'Mtok-in': 'Mtok-in',
  'Mtok-in-text': 'Mtok-in-text',
  'Mtok-in-image': 'Mtok-in-image',
  'Mtok-out': 'Mtok-out',
};
const GRAMMAR = 'provider=[model:]amount/unit[+amount/unit…][@WxH] with unit image, megapixel, s, Mtok-in, Mtok-in-text, Mtok-in-image or Mtok-out (each may end in ~estimate, but not image or megapixel)';

/**
 * Reads PROVIDER_PRICES: comma-separated rules `provider=[model:]term[+term…]`, each term
 * `amount/unit[@WxH][~estimate]`; a size on any term is the rule's. E.g.
 * `runpod=0.00025/s~30,openai=gpt-image-1:5/Mtok-in-text+10/Mtok-in-image+40/Mtok-out,civitai=0.0015/megapixel`.
 * Answers the rules, or the first entry that does not parse.
 */
export function parsePrices(text: string): { rules: PriceRule[] } | { problem: string } {
  const rules: PriceRule[] = [];
  for (const entry of text.split(',').map((part) => part.trim()).filter(Boolean)) {
    const refused = { problem: `"${entry}" is not ${GRAMMAR}` };
    const head = /^([a-z0-9_-]+)=(?:([^:=@~/+]+):)?(.+)$/.exec(entry);
    if (!head) return refused;
    const [, provider, model, body] = head;
    const terms: PriceTerm[] = [];
    let size: PriceRule['size'];
    for (const part of (body as string).split('+')) {
      const match = /^(\d+(?:\.\d+)?)\/([A-Za-z-]+)(?:@(\d+)x(\d+))?(?:~(\d+(?:\.\d+)?))?$/.exec(part);
      const unit = match ? UNITS[match[2] as string] : undefined;
      if (!match || !unit) return refused;
      const [, amount, , width, height, estimate] = match;
      if (estimate !== undefined && (unit === 'image' || unit === 'megapixel')) return refused;
      if (terms.some((term) => term.unit === unit)) return { problem: `"${entry}" prices ${match[2]} twice` };
      if (width && height) {
        if (size) return { problem: `"${entry}" gives a size twice` };
        size = { width: Number(width), height: Number(height) };
      }
      terms.push({ amount: Number(amount), unit, ...(estimate !== undefined ? { estimate: Number(estimate) } : {}) });
    }
    if (terms.some((term) => term.unit === 'Mtok-in') && terms.some((term) => term.unit === 'Mtok-in-text' || term.unit === 'Mtok-in-image')) {
      return { problem: `"${entry}" prices input tokens both as a whole (Mtok-in) and by kind (Mtok-in-text, Mtok-in-image)` };
    }
    rules.push({ provider: provider as string, ...(model ? { model } : {}), ...(size ? { size } : {}), terms });
  }
  return { rules };
}
