/**
 * Every error code gatehouse gives, by the kind of error that carries it: the one
 * catalogue (like jose's `code`s). Logs, tests and API clients match on these strings,
 * so they are stable; a code not listed here does not compile. The HTTP status comes
 * from the kind (see the classes below), the one mapping from errors to HTTP.
 */
export const ERROR_CODES = {
  /** 400: malformed or invalid admin input. */
  InvalidInput: [
    'invalid-body', 'invalid-json', 'body-too-large', 'invalid-field', 'unknown-field', 'invalid-query', 'invalid-cursor',
    'invalid-route', 'invalid-routes', 'duplicate-route', 'invalid-expression',
    'invalid-scope', 'invalid-permission', 'invalid-role-name', 'unknown-role', 'wildcard-not-allowed', 'invalid-idempotency-key',
    'invalid-precondition', 'invalid-if-match', 'invalid-if-none-match', 'invalid-set-name', 'invalid-api-id', 'policy-too-large',
    'invalid-tests', 'invalid-patch', 'invalid-version',
  ],
  /** 401: no usable credential. At the authorizer this is API Gateway's plain 401; the code goes to the log. */
  Unauthenticated: [
    'credential-malformed', 'no-credential', 'no-authorizer-context',
    'jwt-malformed', 'jwt-too-large', 'jwt-unknown-issuer', 'jwt-forbidden-header', 'jwt-alg-not-allowed', 'jwt-unknown-key',
    'jwt-bad-signature', 'jwt-expired', 'jwt-not-yet-valid', 'jwt-claim-invalid', 'jwt-no-sub', 'jwt-foreign-user-id', 'jwt-too-old', 'jwt-typ',
    'token-malformed', 'token-unknown', 'token-bad-secret', 'token-revoked', 'token-expired', 'token-corrupt',
  ],
  /** 403: authenticated, not permitted. */
  Forbidden: [
    'forbidden', 'cannot-assign', 'cannot-create-org', 'cannot-create-token', 'cannot-delete-org', 'cannot-invite', 'cannot-list-invitations', 'cannot-list-members', 'cannot-list-tokens', 'cannot-revoke',
    'cannot-manage-roles', 'cannot-read-audit', 'cannot-read-policy', 'cannot-remove-member', 'cannot-update-policy',
    'email-not-verified', 'explain-others', 'invitee-must-be-user', 'personal-token-needs-user', 'role-ceiling',
    'scope-escalation', 'self-escalation', 'sender-lost-right', 'wrong-invitee', 'token-provenance-unknown', 'expiry-escalation', 'rotation-escalation',
    'cannot-delete-policy', 'cannot-list-policy',
  ],
  /** 404: missing, or not visible to the caller (no existence leak). */
  NotFound: ['not-found', 'route-not-found', 'set-not-found', 'binding-not-found', 'version-not-found', 'candidate-not-found'],
  /** 409: conflicts with the current state. */
  Conflict: [
    'already-member', 'invitation-not-pending', 'invitation-pending', 'last-site-admin', 'membership-changed', 'org-exists',
    'reserved-role-name', 'rotation-conflict', 'site-roles-changed', 'idempotency-token-changed', 'org-deleting',
    'read-only-set', 'set-not-deletable', 'set-in-use', 'unknown-set', 'route-not-found', 'binding-changed',
    'set-not-stored',
  ],
  /** 410: existed, but expired. */
  Gone: ['invitation-expired', 'token-expired'],
  /** 412: the write's precondition (If-Match / If-None-Match) does not hold. */
  PreconditionFailed: ['version-mismatch', 'already-exists'],
  /** 428: a write that must be conditional came without If-Match. */
  PreconditionRequired: ['precondition-required'],
  /** 422: well-formed, but not something that can be done. */
  Unprocessable: ['idempotency-key-reused', 'policy-tests-failed'],
  /** 503: the store failed; always fails closed. */
  StoreError: ['store-unavailable', 'store-timeout', 'invitation-id-collision', 'token-id-collision', 'idempotency-race', 'policy-condition-failed'],
  /** 503: a key source (JWKS endpoint) failed; fails closed. */
  KeySourceError: ['jwks-http-status', 'jwks-invalid', 'jwks-timeout', 'jwks-too-large', 'jwks-unreachable'],
  /** 500: cold-start configuration, and what the admin API answers for anything unexpected. */
  Internal: ['invalid-config', 'internal-error', 'unavailable'],
} as const;

type Codes = typeof ERROR_CODES;
export type InvalidInputCode = Codes['InvalidInput'][number];
export type UnauthenticatedCode = Codes['Unauthenticated'][number];
export type ForbiddenCode = Codes['Forbidden'][number];
export type NotFoundCode = Codes['NotFound'][number];
export type ConflictCode = Codes['Conflict'][number];
export type GoneCode = Codes['Gone'][number];
export type UnprocessableCode = Codes['Unprocessable'][number];
export type PreconditionFailedCode = Codes['PreconditionFailed'][number];
export type PreconditionRequiredCode = Codes['PreconditionRequired'][number];
export type StoreErrorCode = Codes['StoreError'][number];
export type KeySourceErrorCode = Codes['KeySourceError'][number];
/** Any code in the catalogue. */
export type ErrorCode = Codes[keyof Codes][number];

/**
 * One error hierarchy for all of gatehouse. Every error carries a stable `code`
 * (what logs, tests and API clients match on) and the HTTP status it maps to.
 * The mapping to HTTP lives here and nowhere else.
 */
export class GatehouseError extends Error {
  /** Stable, machine-readable code, e.g. `invalid-request`. */
  readonly code: ErrorCode;
  /** HTTP status the admin API answers with. */
  readonly status: number;
  /** Extra structured detail that is safe to show to the caller. */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, status = 500, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    if (details) this.details = details;
  }
}

/** 400: the caller sent something malformed. */
export class InvalidInput extends GatehouseError {
  constructor(code: InvalidInputCode, message: string, details?: Record<string, unknown>) {
    super(code, message, 400, details);
  }
}

/** 401: no usable credential. Authorizers turn this into API Gateway's plain 401. */
export class Unauthenticated extends GatehouseError {
  declare readonly code: UnauthenticatedCode;
  constructor(code: UnauthenticatedCode, message = 'unauthenticated') {
    super(code, message, 401);
  }
}

/** 403: authenticated, but not permitted. */
export class Forbidden extends GatehouseError {
  constructor(code: ForbiddenCode, message = 'forbidden') {
    super(code, message, 403);
  }
}

/** 404: missing, or not visible to the caller (no existence leak). */
export class NotFound extends GatehouseError {
  constructor(code: NotFoundCode = 'not-found', message = 'not found') {
    super(code, message, 404);
  }
}

/** 409: the write conflicts with the current state. */
export class Conflict extends GatehouseError {
  constructor(code: ConflictCode, message: string) {
    super(code, message, 409);
  }
}

/** 412: a write's precondition (`If-Match`, `If-None-Match`) does not hold: it changed since it was read. */
export class PreconditionFailed extends GatehouseError {
  constructor(code: PreconditionFailedCode, message: string) {
    super(code, message, 412);
  }
}

/** 428: a write that must be conditional came without `If-Match` (or `If-None-Match: *`). */
export class PreconditionRequired extends GatehouseError {
  constructor(code: PreconditionRequiredCode, message: string) {
    super(code, message, 428);
  }
}

/** 410: the thing existed but has expired. */
export class Gone extends GatehouseError {
  constructor(code: GoneCode, message: string) {
    super(code, message, 410);
  }
}

/** 422: well-formed, but it cannot be done (a reused idempotency key, failing policy tests). */
export class Unprocessable extends GatehouseError {
  constructor(code: UnprocessableCode, message: string, details?: Record<string, unknown>) {
    super(code, message, 422, details);
  }
}

/** The store (DynamoDB) failed or answered unexpectedly. Always fails closed. */
export class StoreError extends GatehouseError {
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
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
  declare readonly code: KeySourceErrorCode;
  constructor(code: KeySourceErrorCode, message: string) {
    super(code, message, 503);
  }
}

/** True when `err` is a gatehouse error (of any subclass). */
export function isGatehouseError(err: unknown): err is GatehouseError {
  return err instanceof GatehouseError;
}
