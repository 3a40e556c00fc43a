/**
 * The single-table DynamoDB schema: the one definition used by the store adapter,
 * the tests, the local stack and `sst.config.ts`.
 *
 * Keys are generic (`pk`/`sk`, `gsi1pk`/`gsi1sk`, `gsi2pk`/`gsi2sk`) and values are
 * type-prefixed, named after the access pattern that reads them (see `keys`).
 */
export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  attributes: { pk: 'S', sk: 'S', gsi1pk: 'S', gsi1sk: 'S', gsi2pk: 'S', gsi2sk: 'S' },
  indexes: {
    gsi1: { partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    gsi2: { partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  },
} as const;

export type IndexName = keyof typeof TABLE_SCHEMA.indexes;

/** The children of an org indexed in its partition. */
export type OrgChildKind = 'MEMBER' | 'TOKEN' | 'INVITE';

/** Default table name when `GATEHOUSE_TABLE` is unset. */
export const DEFAULT_TABLE_NAME = 'gatehouse';

/**
 * Key builders, one per access pattern. Ids are embedded verbatim and looked up by
 * exact equality, so an id containing `#` cannot reach another entity's key space:
 * every prefix query below ends in a separator that ids are validated not to contain
 * where it matters (org ids, role names, token ids).
 */
export const keys = {
  /** Everything about one user: site roles (`PROFILE`) and memberships (`MEMBER#org`). One Query loads a principal. */
  user: (userId: string) => `USER#${userId}`,
  userProfile: () => 'PROFILE',
  membershipSk: (orgId: string) => `MEMBER#${orgId}`,
  /** GSI1: members of an org. */
  orgMembers: (orgId: string) => `ORGMEMBERS#${orgId}`,
  orgMemberSk: (userId: string) => `USER#${userId}`,

  /**
   * The org's own partition: the org item (`ORG`), pending-invitation guards, and an index
   * item for every child that grants access in it (`MEMBER#<user>`, `TOKEN#<id>`,
   * `INVITE#<id>`), written in the same transaction as the child, so the deletion cascade
   * finds every child with one strongly consistent Query.
   */
  org: (orgId: string) => `ORG#${orgId}`,
  orgSk: () => 'ORG',
  orgChildSk: (kind: OrgChildKind, childId: string) => `${kind}#${childId}`,
  /** GSI1: all orgs. */
  allOrgs: () => 'ORGS',

  /**
   * The role catalog: custom roles (`ROLE#…`) and their version stamp (`VERSION`), shared
   * by every policy set. Before policy sets this partition also held the one route table
   * (`ROUTES`) and gate (`GATE`): read as the `default` set until its first write moves them.
   */
  policy: () => 'POLICY',
  routesSk: () => 'ROUTES',
  gateSk: () => 'GATE',
  versionSk: () => 'VERSION',
  siteRoleSk: (name: string) => `ROLE#SITE#${name}`,
  orgRoleSk: (orgId: string, name: string) => `ROLE#ORG#${orgId}#${name}`,
  rolesPrefix: () => 'ROLE#',
  orgRolesPrefix: (orgId: string) => `ROLE#ORG#${orgId}#`,
  /** Marker of an org being deleted: loaded with the policy, so authorizers ignore the org's memberships and tokens. */
  deletingOrgSk: (orgId: string) => `DELETINGORG#${orgId}`,

  /**
   * One partition per policy set: version stamp (`VERSION`: counter, API bindings count,
   * tombstone flag), route table (`ROUTES`), gate (`GATE`), tests (`TESTS`). The stamp is
   * the small item the authorizer checks; the tests are never loaded to decide.
   */
  policySet: (name: string) => `POLICYSET#${name}`,
  testsSk: () => 'TESTS',
  /**
   * Shadow mode (DESIGN §9): the set's candidate version (`CANDIDATE`: routes, gate and
   * what it was compared against; loaded with the set's content), its tests apart
   * (`CANDIDATE#TESTS`, never loaded to decide), and the shadow report of candidate `n`
   * (`SHADOW#<n>#TOTALS`, `#EXAMPLES`, `#DIFF#<key hash>`), added to by every container.
   */
  candidateSk: () => 'CANDIDATE',
  candidateTestsSk: () => 'CANDIDATE#TESTS',
  shadowPrefix: (candidate: number) => `SHADOW#${candidate}#`,
  shadowTotalsSk: (candidate: number) => `SHADOW#${candidate}#TOTALS`,
  shadowExamplesSk: (candidate: number) => `SHADOW#${candidate}#EXAMPLES`,
  shadowDiffSk: (candidate: number, keyHash: string) => `SHADOW#${candidate}#DIFF#${keyHash}`,
  /** GSI1: every stored set but `default` (which always exists and is listed anyway). */
  allPolicySets: () => 'POLICYSETS',
  /** An API's binding to a set (by API Gateway API id). */
  apiBinding: (apiId: string) => `APIBINDING#${apiId}`,
  apiBindingSk: () => 'BINDING',
  /** GSI1: every API binding. */
  allApiBindings: () => 'APIBINDINGS',

  /**
   * A set's history, one partition per set, written in the same transaction as the set:
   * per version an entry (`V#<version>`: who, when, action, summary, gate) and its content
   * in items of their own (`R#<version>` routes, `T#<version>` tests), so an entry holds a
   * table and tests that each fill most of an item. Versions are zero-padded to 12 digits,
   * so the sort key orders them and a Query on `V#` lists entries newest first.
   */
  policyHistory: (name: string) => `POLICYHISTORY#${name}`,
  historyEntrySk: (version: number) => `V#${historyVersion(version)}`,
  historyRoutesSk: (version: number) => `R#${historyVersion(version)}`,
  historyTestsSk: (version: number) => `T#${historyVersion(version)}`,
  historyEntryPrefix: () => 'V#',

  token: (tokenId: string) => `TOKEN#${tokenId}`,
  tokenSk: () => 'TOKEN',
  /** GSI1: token listings by holder. */
  tokensByOwner: (userId: string) => `TOKENS#USER#${userId}`,
  tokensByOrg: (orgId: string) => `TOKENS#ORG#${orgId}`,
  tokensSite: () => 'TOKENS#SITE',
  /** GSI2: every token, for the site-wide audit view. */
  allTokens: () => 'TOKENS',
  accessLogSk: (at: string, suffix: string) => `LOG#${at}#${suffix}`,
  /** An Idempotency-Key of a token creation, by a value derived from the key and the caller. */
  idempotency: (lookup: string) => `IDEMPOTENCY#${lookup}`,
  idempotencySk: () => 'IDEMPOTENCY',
  accessLogPrefix: () => 'LOG#',

  invitation: (id: string) => `INVITE#${id}`,
  invitationSk: () => 'INVITE',
  /** GSI1: invitations of an org. GSI2: invitations to an email. */
  orgInvitations: (orgId: string) => `ORGINVITES#${orgId}`,
  emailInvitations: (email: string) => `EMAILINVITES#${email}`,
  /** Guard item: one pending invitation per (org, email). */
  pendingInviteSk: (email: string) => `PENDINGINVITE#${email}`,

  audit: (day: string) => `AUDIT#${day}`,
} as const;

/** A version number as history sort keys hold it: 12 digits, zero-padded (string order = number order). */
function historyVersion(version: number): string {
  return String(version).padStart(12, '0');
}
