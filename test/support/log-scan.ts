/**
 * What must never appear in a log line: a credential (a bearer header value, a gatehouse
 * token, a JWT) or a hash of one (SHA-256 as 64 hex digits or 43 base64url characters).
 * Every runtime built by `testRuntime` records its lines here, and a check after each
 * test file (`log-scan-setup.ts`) scans them all.
 */

export const SECRET_PATTERNS: readonly (readonly [string, RegExp])[] = [
  ['bearer credential', /\bbearer\s+[A-Za-z0-9._~+/=-]{8,}/i],
  ['gatehouse token', /gat_[0-9A-Za-z]{16}_[0-9A-Za-z]/],
  ['JWT', /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\./],
  ['SHA-256 hex', /(?<![0-9A-Za-z])[0-9a-fA-F]{64}(?![0-9A-Za-z])/],
  ['SHA-256 base64url', /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_=-])/],
];

/** Which secret shapes (and which of the `known` exact secrets) a line holds. */
export function secretsIn(line: string, known: readonly string[] = []): string[] {
  const found: string[] = [];
  for (const [name, re] of SECRET_PATTERNS) if (re.test(line)) found.push(name);
  for (const k of known) if (k.length >= 8 && line.includes(k)) found.push(`known secret ${k.slice(0, 6)}…`);
  return found;
}

/** Every log line written by a runtime built in this test file. */
export const recordedLines: string[] = [];

/** A sink that records into {@link recordedLines} and then calls `next`. */
export function recording(next: (line: string) => void): (line: string) => void {
  return (line) => {
    recordedLines.push(line);
    next(line);
  };
}
