/**
 * One error hierarchy for all of gatehouse. Every error carries a stable `code`
 * (what logs, tests and API clients match on) and the HTTP status it maps to.
 * The mapping to HTTP lives here and nowhere else.
 */
export class GatehouseError extends Error {
  /** Stable, machine-readable code, e.g. `invalid-request`. */
  readonly code: string;
  /** HTTP status the admin API answers with. */
  readonly status: number;
  /** Extra structured detail that is safe to show to the caller. */
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, status = 500, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    if (details) this.details = details;
  }
}

/** 400: the caller sent something malformed. */
export class InvalidInput extends GatehouseError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, 400, details);
  }
}

/** 401: no usable credential. Authorizers turn this into API Gateway's plain 401. */
export class Unauthenticated extends GatehouseError {
  constructor(code: string, message = 'unauthenticated') {
    super(code, message, 401);
  }
}

/** 403: authenticated, but not permitted. */
export class Forbidden extends GatehouseError {
  constructor(code: string, message = 'forbidden') {
    super(code, message, 403);
  }
}

/** 404: missing, or not visible to the caller (no existence leak). */
export class NotFound extends GatehouseError {
  constructor(code = 'not-found', message = 'not found') {
    super(code, message, 404);
  }
}

/** 409: the write conflicts with the current state. */
export class Conflict extends GatehouseError {
  constructor(code: string, message: string) {
    super(code, message, 409);
  }
}

/** 412: a write's precondition (`If-Match`, `If-None-Match`) does not hold: it changed since it was read. */
export class PreconditionFailed extends GatehouseError {
  constructor(code: string, message: string) {
    super(code, message, 412);
  }
}

/** 428: a write that must be conditional came without `If-Match` (or `If-None-Match: *`). */
export class PreconditionRequired extends GatehouseError {
  constructor(code: string, message: string) {
    super(code, message, 428);
  }
}

/** 410: the thing existed but has expired. */
export class Gone extends GatehouseError {
  constructor(code: string, message: string) {
    super(code, message, 410);
  }
}

/** The store (DynamoDB) failed or answered unexpectedly. Always fails closed. */
export class StoreError extends GatehouseError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, 503);
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** Configuration is invalid; raised at cold start, naming the bad field. */
export class ConfigError extends GatehouseError {
  constructor(message: string) {
    super('invalid-config', message, 500);
  }
}

/** A key source (JWKS endpoint) failed. Fails closed like a store error. */
export class KeySourceError extends GatehouseError {
  constructor(code: string, message: string) {
    super(code, message, 503);
  }
}

/** True when `err` is a gatehouse error (of any subclass). */
export function isGatehouseError(err: unknown): err is GatehouseError {
  return err instanceof GatehouseError;
}
