import type { ErrorFormat } from '../../http/errors.ts';

/** RunPod answers errors as `{error}`; the status codes are the native API's. */
export const runpodErrors: ErrorFormat = {
  ownNotFound: false,
  format: (error) => ({ status: error.status, body: { error: error.message } }),
};
