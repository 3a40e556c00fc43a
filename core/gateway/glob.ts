/**
 * Intersection of two patterns over strings, used to prove that a wildcard IAM
 * resource cannot cover a path the principal is not entitled to.
 *
 * Elements: a literal character; `seg` = one or more characters other than `/`
 * (a `{param}` path segment); `any` = zero or more characters of any kind (IAM's `*`);
 * `plus` = one or more characters of any kind (a greedy `{proxy+}`).
 */
export type GlobElement = { lit: string } | { seg: true } | { any: true } | { plus: true };

export type Atom = { cls: 'lit'; ch: string; star: boolean } | { cls: 'ns' | 'all'; star: boolean };

/** Compiles elements once for repeated intersection tests. */
export function atoms(pattern: readonly GlobElement[]): Atom[] {
  const out: Atom[] = [];
  for (const e of pattern) {
    if ('lit' in e) for (const ch of e.lit) out.push({ cls: 'lit', ch, star: false });
    else if ('seg' in e) out.push({ cls: 'ns', star: false }, { cls: 'ns', star: true });
    else if ('plus' in e) out.push({ cls: 'all', star: false }, { cls: 'all', star: true });
    else out.push({ cls: 'all', star: true });
  }
  return out;
}

function compatible(a: Atom, b: Atom): boolean {
  if (a.cls === 'lit' && b.cls === 'lit') return a.ch === b.ch;
  if (a.cls === 'lit') return b.cls === 'all' || a.ch !== '/';
  if (b.cls === 'lit') return a.cls === 'all' || b.ch !== '/';
  return true; // ns/all always share some character (e.g. "a")
}

/** True when some string matches both patterns. Exact: a product-automaton search. */
export function globsIntersect(p: readonly GlobElement[], q: readonly GlobElement[]): boolean {
  return atomsIntersect(atoms(p), atoms(q));
}

/** `globsIntersect` on compiled atoms. */
export function atomsIntersect(a: readonly Atom[], b: readonly Atom[]): boolean {
  const seen = new Set<number>();
  const stack: [number, number][] = [[0, 0]];
  const width = b.length + 1;
  while (stack.length > 0) {
    const [i, j] = stack.pop()!;
    const id = i * width + j;
    if (seen.has(id)) continue;
    seen.add(id);
    if (i === a.length && j === b.length) return true;
    const ai = a[i];
    const bj = b[j];
    // Epsilon moves: a starred atom may match nothing.
    if (ai?.star) stack.push([i + 1, j]);
    if (bj?.star) stack.push([i, j + 1]);
    if (ai && bj && compatible(ai, bj)) stack.push([ai.star ? i : i + 1, bj.star ? j : j + 1]);
  }
  return false;
}

/** The literal text a pattern starts with (up to its first wildcard). */
export function leadingLiteral(pattern: readonly GlobElement[]): string {
  let out = '';
  for (const e of pattern) {
    if (!('lit' in e)) break;
    out += e.lit;
  }
  return out;
}

/** Parses an IAM resource path pattern (`*` = any run of characters) into elements. */
export function iamGlob(pattern: string): GlobElement[] {
  const out: GlobElement[] = [];
  let lit = '';
  for (const ch of pattern) {
    if (ch === '*') {
      if (lit) out.push({ lit });
      lit = '';
      out.push({ any: true });
    } else lit += ch;
  }
  if (lit) out.push({ lit });
  return out;
}
