/** A single permission: `resource` and `action` are lower-case names or `*`. */
export interface Permission {
  resource: string;
  action: string;
  /** A negated permission takes away; at its level it wins over any grant. */
  negate?: boolean;
}

/** A role: permissions granted at each level. */
export interface Role {
  name: string;
  /** Human-readable name for listings. */
  displayName?: string;
  site: Permission[];
  org: Permission[];
  member: Permission[];
  user: Permission[];
  /** Custom roles only: the org that owns it (absent for site-wide roles). */
  orgId?: string;
  builtIn?: boolean;
}

/** The object a request acts on. */
export interface AuthzObject {
  type: string;
  action: string;
  orgId?: string;
  ownerId?: string;
}

/** Principal kinds: a user (JWT or personal token) or a service (org/site token). */
export type PrincipalKind = 'user' | 'service';

export type TokenKind = 'personal' | 'org' | 'site';

/**
 * Who is asking, with everything the decision needs already resolved:
 * role names per level (role definitions are looked up in a `RoleCatalog`).
 */
export interface Principal {
  /** User id, or `token:<tokenId>` for a service token. */
  id: string;
  kind: PrincipalKind;
  /** Site roles (names). */
  siteRoles: string[];
  /** Org memberships: org id -> role names. */
  orgs: Record<string, string[]>;
  email?: string;
  emailVerified?: boolean;
  groups?: string[];
  /** Verified JWT claims (only verified tokens ever produce these). */
  claims?: Record<string, unknown>;
  /** Present when the credential was a gatehouse token. */
  token?: {
    id: string;
    kind: TokenKind;
    /** Scope permissions; undefined means "all of the holder's rights". */
    scopes?: Permission[];
    orgId?: string;
    ownerId?: string;
  };
}

/** Which level of the decision answered. */
export type DecisionLevel = 'site' | 'org' | 'member' | 'user' | 'none';

/** One reason in an explanation. */
export interface Reason {
  step: string;
  detail: string;
}

export interface Decision {
  allowed: boolean;
  /** Stable reason code, e.g. `site-allow`, `org-negated`, `not-member`, `scope-denied`. */
  code: string;
  level: DecisionLevel;
  role?: string;
  permission?: Permission;
  reasons: Reason[];
}
