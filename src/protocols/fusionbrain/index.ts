/**
 * Fusion Brain's documented request limits. The provider checks them before calling the service and
 * the dialect enforces them on its clients, so both sides of darkroom describe the same service.
 */
export const FUSIONBRAIN_LIMITS = { minSide: 64, maxSide: 1024, sideMultiple: 64, maxQueryLength: 1000, numImages: 1 } as const;

/** Fusion Brain's published style names (its styles list, served from the service's CDN). */
export const KANDINSKY_STYLES = ['KANDINSKY', 'UHD', 'ANIME', 'DEFAULT'] as const;

export function isKandinskyStyle(style: string): boolean {
  return (KANDINSKY_STYLES as readonly string[]).includes(style.toUpperCase());
}
