import { fieldName, type ErrorFormat, type NormalisedError } from '../../http/errors.ts';

/** ComfyUI's error type for a darkroom error code. */
function typeOf(error: NormalisedError): string {
  switch (error.code) {
    case 'validation_failed':
    case 'malformed_json':
      return 'invalid_prompt';
    case 'unauthorized':
    case 'forbidden':
      return 'unauthorized';
    case 'internal_error':
      return 'server_error';
    default:
      return error.code;
  }
}

/**
 * Errors in the shape ComfyUI's `/prompt` answers them, `{error: {type, message, details,
 * extra_info}, node_errors}`, for every route (ComfyUI's other routes answer bare statuses, which
 * tell a client less).
 */
export const comfyuiErrors: ErrorFormat = {
  // Its paths start at the root, where darkroom's own 404s answer.
  ownNotFound: false,
  format: (error) => ({
    status: error.status,
    body: {
      error: {
        type: typeOf(error),
        message: error.message,
        details: error.fields.map((problem) => `${fieldName(problem)} ${problem.message}`).join('; '),
        extra_info: {},
      },
      node_errors: [],
      ...error.extra,
    },
  }),
};
