/**
 * The native API answers errors as RFC 9457 problem details: darkroom's own format, which also
 * answers every route outside a dialect (health, signed links, docs), so it lives in the HTTP kit.
 */
export { problemFormat as nativeErrors } from '../../http/problem.ts';
