/**
 * Fusion Brain's documented request limits. The provider checks them before calling the service and
 * the dialect enforces them on its clients, so both sides of darkroom describe the same service.
 */
export const FUSIONBRAIN_LIMITS = { minSide: 64, maxSide: 1024, sideMultiple: 64, maxQueryLength: 1000, numImages: 1 } as const;
