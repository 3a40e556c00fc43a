import { describe, expect, it } from 'vitest';
import { createRestAuthorizer } from '../../core/gateway/handlers';
import { bootstrapAdmin } from '../../scripts/bootstrap-admin';
import { testRuntime } from '../support/runtime';

describe('bootstrap-admin', () => {
  it('writes a working site token and makes the user a site admin', async () => {
    const rt = await testRuntime();
    const { token, tokenId } = await bootstrapAdmin({ client: rt.store.db.client, tableName: rt.tableName, userId: 'operator', now: rt.clock.seconds });
    expect(token.startsWith(`gat_${tokenId}_`)).toBe(true);
    expect(await rt.store.users.getSiteRoles('operator')).toEqual(['site-admin']);
    const record = await rt.store.tokens.getToken(tokenId);
    expect(record).toMatchObject({ kind: 'site', name: 'bootstrap' });
    expect(JSON.stringify(record)).not.toContain(token.split('_')[2]!.slice(0, 32));
    await rt.store.policy.putRoutes([{ route: 'GET /x', resource: 'x', action: 'read' }], rt.clock.seconds);
    const rest = createRestAuthorizer({ authorizer: rt.authorizer, logger: rt.logger, now: rt.now });
    const res = await rest({ type: 'TOKEN', authorizationToken: `Bearer ${token}`, methodArn: 'arn:aws:execute-api:us-east-1:123456789012:api/prod/GET/x' });
    expect(res.policyDocument.Statement[0]!.Effect).toBe('Allow');
    // Running it again adds a token, and does not duplicate the role.
    await bootstrapAdmin({ client: rt.store.db.client, tableName: rt.tableName, userId: 'operator', now: rt.clock.seconds });
    expect(await rt.store.users.getSiteRoles('operator')).toEqual(['site-admin']);
  });
});
