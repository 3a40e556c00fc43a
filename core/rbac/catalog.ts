import { BUILTIN_ROLES } from './builtin';
import type { Role } from './types';

/**
 * Role definitions by name: built-in first (their names are reserved), then the
 * org's custom roles, then site-wide custom roles. Built once per policy version.
 */
export class RoleCatalog {
  private readonly site = new Map<string, Role>();
  private readonly org = new Map<string, Map<string, Role>>();

  constructor(customRoles: readonly Role[] = []) {
    for (const role of customRoles) {
      if (Object.prototype.hasOwnProperty.call(BUILTIN_ROLES, role.name)) continue;
      if (role.orgId) {
        let m = this.org.get(role.orgId);
        if (!m) this.org.set(role.orgId, (m = new Map()));
        m.set(role.name, role);
      } else {
        this.site.set(role.name, role);
      }
    }
  }

  /** A site role (built-in or site-wide custom). */
  siteRole(name: string): Role | undefined {
    return (Object.prototype.hasOwnProperty.call(BUILTIN_ROLES, name) ? BUILTIN_ROLES[name] : undefined) ?? this.site.get(name);
  }

  /** A role as held in a membership of `orgId`: built-in, that org's custom role, or a site-wide custom role. */
  orgRole(orgId: string, name: string): Role | undefined {
    if (Object.prototype.hasOwnProperty.call(BUILTIN_ROLES, name)) return BUILTIN_ROLES[name];
    return this.org.get(orgId)?.get(name) ?? this.site.get(name);
  }

  /** Custom roles defined for an org. */
  orgRoles(orgId: string): Role[] {
    return [...(this.org.get(orgId)?.values() ?? [])];
  }

  /** Site-wide custom roles. */
  siteRoles(): Role[] {
    return [...this.site.values()];
  }
}
