/**
 * The logger the core and the adapters write to: pino's shape, so the composition root passes its
 * pino logger as it is, and nothing below it depends on pino.
 */
export interface LogFn {
  (message: string): void;
  (fields: object, message?: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}
