import type { Command } from '../command';

/**
 * EXTENSION POINT: policy-set commands.
 *
 * `gatehouse policy pull|diff|push|test|bind` will manage policy sets (DESIGN §6 "Policy
 * sets", §9) once the policy-set endpoints (`/policies/sets…`, `/policies/apis…`, with
 * ETag / If-Match) land:
 *   pull <set> [--out file]        GET /policies/sets/{set}, written with its ETag
 *   diff <set> --file f            the file against the stored version
 *   push <set> --file f            PUT /policies/sets/{set} with If-Match (412 = someone changed it)
 *   test --file f                  the set's tests, offline, with the same engine
 *   bind <apiId> <set>             PUT /policies/apis/{apiId}
 * Add them to this list; they are registered, get `--help`, `--json` and the exit codes
 * like every other command. Until then `gatehouse api` reaches any of those endpoints,
 * and the route-coverage test exempts `/policies/…` routes.
 */
export const POLICY_COMMANDS: Command[] = [];
