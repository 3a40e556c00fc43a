import { InvalidInput, PreconditionFailed, PreconditionRequired } from '../errors';

/**
 * A write's precondition, from `If-Match` / `If-None-Match` (RFC 9110 §13.1):
 * - `match`: the current version must be one of `versions` (strong comparison: weak
 *   tags and tags that name no version of ours are kept out, so they never match);
 * - `exists`: `If-Match: *`, whatever the current version, as long as there is one
 *   (an overwrite on purpose, never by omission);
 * - `absent`: `If-None-Match: *`, create only.
 */
export type Precondition = { kind: 'match'; versions: string[] } | { kind: 'exists' } | { kind: 'absent' };

/** What a precondition is evaluated against. */
export interface VersionState {
  exists: boolean;
  version: string;
}

const MAX_HEADER = 1024;
const MAX_TAGS = 20;
/** The versions gatehouse issues as entity tags: a counter. */
const VERSION_RE = /^\d{1,15}$/;

/** The entity tag of a version: quoted, strong. */
export function etag(version: string): string {
  return `"${version}"`;
}

/**
 * Parses a list of entity tags (`"1", W/"2"`). Undefined when it is not one: the
 * caller answers 400. Entity-tag characters are %x21, %x23-7E (RFC 9110 §8.8.3).
 */
function parseTags(value: string): { weak: boolean; tag: string }[] | undefined {
  const out: { weak: boolean; tag: string }[] = [];
  let i = 0;
  const skip = () => {
    while (i < value.length && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  skip();
  while (i < value.length) {
    let weak = false;
    if (value.startsWith('W/', i)) {
      weak = true;
      i += 2;
    }
    if (value[i] !== '"') return undefined;
    const end = value.indexOf('"', i + 1);
    if (end < 0) return undefined;
    const tag = value.slice(i + 1, end);
    if (!/^[\x21\x23-\x7e]*$/.test(tag)) return undefined;
    out.push({ weak, tag });
    i = end + 1;
    skip();
    if (i === value.length) break;
    if (value[i] !== ',') return undefined;
    i++;
    skip();
    if (i === value.length) return undefined;
  }
  return out.length > 0 && out.length <= MAX_TAGS ? out : undefined;
}

/**
 * The precondition of a policy write, from the request headers (names lower-cased). A
 * write without one is a 428 `precondition-required`: a policy write that does not say
 * which version it replaces is how two operators silently overwrite each other, so it
 * has to be asked for (`If-Match: *`) rather than happen by omission. Malformed values
 * are a 400 `invalid-if-match` / `invalid-if-none-match`.
 */
export function readPrecondition(headers: Record<string, string>): Precondition {
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new InvalidInput('invalid-precondition', 'send If-Match or If-None-Match, not both');
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') throw new InvalidInput('invalid-if-none-match', 'If-None-Match on a write must be * (create only)');
    return { kind: 'absent' };
  }
  if (ifMatch === undefined) {
    throw new PreconditionRequired('precondition-required', 'policy writes need If-Match: "<version>" (the ETag of what you read), If-Match: * to overwrite whatever is there, or If-None-Match: * to create');
  }
  if (ifMatch.length > MAX_HEADER) throw new InvalidInput('invalid-if-match', `If-Match longer than ${MAX_HEADER} characters`);
  if (ifMatch.trim() === '*') return { kind: 'exists' };
  const tags = parseTags(ifMatch);
  if (!tags) throw new InvalidInput('invalid-if-match', `If-Match must be * or a list of at most ${MAX_TAGS} quoted entity tags, e.g. If-Match: "12"`);
  return { kind: 'match', versions: tags.filter((t) => !t.weak && VERSION_RE.test(t.tag)).map((t) => t.tag) };
}

/** Throws 412 `version-mismatch` (or `already-exists` for a create) unless `pre` holds for `state`. */
export function checkPrecondition(pre: Precondition, state: VersionState, what: string): void {
  if (pre.kind === 'absent') {
    if (state.exists) throw new PreconditionFailed('already-exists', `${what} exists (version ${state.version}); send If-Match with its ETag to replace it`);
    return;
  }
  if (!state.exists) throw new PreconditionFailed('version-mismatch', `${what} does not exist; send If-None-Match: * to create it`);
  if (pre.kind === 'match' && !pre.versions.includes(state.version)) {
    throw new PreconditionFailed('version-mismatch', `${what} is at version ${state.version}, not the one in If-Match: read it again`);
  }
}
