import { describe, expect, it } from 'vitest';
import { OrgAdmin } from '../../core/admin/orgs';
import { PolicyAdmin } from '../../core/admin/policies';
import { InvitationService } from '../../core/invitations/service';
import { TokenService } from '../../core/tokens/service';
import { ADMIN_ROUTES } from '../../functions/routes';

describe('the one admin route list', () => {
  it('matches what each function serves, route for route', () => {
    const deps = {} as never;
    const served: Record<string, string> = {};
    for (const r of Object.keys(new TokenService(deps).routes())) served[r] = 'tokens';
    for (const r of Object.keys(new InvitationService({ store: { db: {} } } as never).routes())) served[r] = 'invitations';
    for (const r of Object.keys({ ...new OrgAdmin(deps).routes(), ...new PolicyAdmin(deps).routes() })) served[r] = 'admin';
    expect(served).toEqual({ ...ADMIN_ROUTES });
  });
});
