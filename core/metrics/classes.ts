/**
 * Dimension values for gatehouse's metrics. Every dimension is bounded: reason codes map
 * to a short list of classes, and a dimension fed by codes that may grow (fail-closed
 * reasons, cache names) keeps its first few distinct values and calls the rest `other`.
 * Never a user, a token, a path or a route: those belong in the log line.
 */

/** The outcomes a decision metric counts. */
export const OUTCOMES = ['allow', 'deny', 'unauthorized', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The authorizer flavours (the `flavour` of `authorizer.decision`). */
export const FLAVOURS = ['rest-token', 'rest-request', 'http', 'websocket'] as const;

/** 401 reason codes -> class. */
const UNAUTHORIZED_CLASSES: Record<string, string> = {
  'no-credential': 'no-credential',
  'credential-malformed': 'malformed',
  'jwt-malformed': 'malformed',
  'jwt-too-large': 'malformed',
  'token-malformed': 'malformed',
  'token-corrupt': 'malformed',
  'jwt-expired': 'expired',
  'token-expired': 'expired',
  'jwt-not-yet-valid': 'expired',
  'jwt-too-old': 'expired',
  'token-revoked': 'revoked',
  'token-unknown': 'unknown-credential',
  'jwt-unknown-issuer': 'unknown-credential',
  'jwt-unknown-key': 'unknown-credential',
  'jwt-bad-signature': 'bad-signature',
  'jwt-claim-invalid': 'rejected-claims',
  'jwt-no-sub': 'rejected-claims',
  'jwt-typ': 'rejected-claims',
  'jwt-forbidden-header': 'rejected-claims',
  'jwt-alg-not-allowed': 'rejected-claims',
};

/** Every class a 401 can be counted under. */
export const UNAUTHORIZED_CLASS_NAMES = [...new Set(Object.values(UNAUTHORIZED_CLASSES)), 'other'] as const;

/** Deny reason codes -> class. */
const DENY_CLASSES: Record<string, string> = {
  'no-route': 'no-route',
  'gate-denied': 'gate',
  'condition-false': 'condition',
  'not-member': 'not-member',
  'no-permission': 'no-permission',
  'scope-denied': 'scope',
};

/** Every class a Deny can be counted under. */
export const DENY_CLASS_NAMES = [...new Set(Object.values(DENY_CLASSES)), 'negated', 'other'] as const;

/** The class of a 401's reason code (`other` for codes this list does not know). */
export function unauthorizedClass(code: unknown): string {
  return (typeof code === 'string' && UNAUTHORIZED_CLASSES[code]) || 'other';
}

/** The class of a Deny's reason code: `org-negated` and the like are `negated`. */
export function denyClass(code: unknown): string {
  if (typeof code !== 'string') return 'other';
  return DENY_CLASSES[code] ?? (code.endsWith('-negated') ? 'negated' : 'other');
}

/** A known flavour, else `other`. */
export function flavourOf(value: unknown): string {
  return typeof value === 'string' && (FLAVOURS as readonly string[]).includes(value) ? value : 'other';
}

/** A known outcome, else undefined. */
export function outcomeOf(value: unknown): Outcome | undefined {
  return typeof value === 'string' && (OUTCOMES as readonly string[]).includes(value) ? (value as Outcome) : undefined;
}

/**
 * Values of one open-ended dimension (a code, a cache name): lower-case letters, digits
 * and dashes, at most 48 characters, and at most `max` distinct values per container;
 * anything past that, or not a string, is `other`.
 */
export class BoundedValues {
  private readonly seen = new Set<string>();

  constructor(private readonly max = 20) {}

  of(value: unknown): string {
    if (typeof value !== 'string') return 'other';
    const v = value.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 48) || 'other';
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(v);
    return v;
  }
}
