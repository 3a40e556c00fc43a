import { z } from 'zod';

/**
 * What an admin endpoint takes and answers, declared beside the service that serves
 * it: the same zod schemas the endpoint validates with, plus the schemas of what it
 * answers and the error codes it can answer with. `scripts/openapi.ts` turns these
 * into `docs/openapi.json` and the endpoint table of `docs/admin-api.md`; tests hold
 * the declared answers against what the real handlers answer.
 */
export interface RouteSpec {
  /** One line: what the endpoint does. */
  summary: string;
  /** More, when one line is not enough (who may call it, what it refuses). */
  description?: string;
  /** The JSON body the endpoint parses (the schema it validates with). */
  body?: z.ZodType;
  /** True when the body may be left out (e.g. a rotation without options). */
  bodyOptional?: boolean;
  /** The query string the endpoint parses. */
  query?: z.ZodType;
  /** Request headers the endpoint reads. */
  headers?: { name: string; description: string; schema: z.ZodType }[];
  /** Success answers by status; no schema means an empty body (204). `headers`: response headers it always carries, by name, with what they hold. */
  responses: Record<number, { description: string; schema?: z.ZodType; headers?: Record<string, string> }>;
  /** Error answers the endpoint itself gives (the ones every endpoint can give are added by the generator). */
  errors: ErrorSpec[];
}

/** One error an endpoint answers: `{ error: { code, message } }` with `status`. */
export interface ErrorSpec {
  status: number;
  code: string;
  /** When it happens. */
  when: string;
}

export type RouteSpecs = Record<string, RouteSpec>;

/** `{ items: [...], nextCursor? }`: the shape of every listing. */
export function listOf<T extends z.ZodType>(item: T) {
  return z.strictObject({ items: z.array(item), nextCursor: z.string().optional() });
}

/** Epoch seconds. */
export const epochSeconds = z.number().int().meta({ description: 'epoch seconds' });

/** A permission or scope as roles carry it. */
export const permissionSchema = z.strictObject({
  resource: z.string(),
  action: z.string(),
  negate: z.boolean().optional(),
}).meta({ title: 'Permission' });

/** Errors shared by many endpoints, so every spec names them the same way. */
export const commonErrors = {
  notFound: (when = 'it does not exist, or the caller may not see it (no existence leak)'): ErrorSpec => ({ status: 404, code: 'not-found', when }),
  invalidScope: { status: 400, code: 'invalid-scope', when: 'a scope is not `resource:action` (lower-case names or `*`), or is repeated' } as ErrorSpec,
  unknownRole: { status: 400, code: 'unknown-role', when: 'a role name is neither built in nor a custom role of that scope' } as ErrorSpec,
  cannotAssign: { status: 403, code: 'cannot-assign', when: 'the caller may not assign roles there' } as ErrorSpec,
  roleCeiling: { status: 403, code: 'role-ceiling', when: 'the role grants a permission the caller does not hold' } as ErrorSpec,
  selfEscalation: { status: 403, code: 'self-escalation', when: 'the change would widen the caller\'s own rights' } as ErrorSpec,
  invalidCursor: { status: 400, code: 'invalid-cursor', when: 'the cursor was not issued for this listing' } as ErrorSpec,
};
