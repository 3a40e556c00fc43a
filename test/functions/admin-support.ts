import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { OrgAdmin } from '../../core/admin/orgs';
import { PolicyAdmin } from '../../core/admin/policies';
import { createApi, type HttpApiEvent } from '../../core/http/api';
import { makeIssuer } from '../support/jwt';
import { testRuntime, type TestClock } from '../support/runtime';

/** An admin API over a fresh table, with orgs, users and an issuer for credentials. */
export async function adminWorld(options: { clock?: TestClock } = {}) {
  const idp = await makeIssuer();
  const rt = await testRuntime({ ttl: false, env: { GATEHOUSE_ISSUERS: JSON.stringify([idp.config]) }, ...(options.clock ? { clock: options.clock } : {}) });
  const now = rt.clock.seconds;
  for (const id of ['acme', 'globex']) await rt.store.orgs.createOrg({ id, name: id.toUpperCase(), createdAt: now });
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  await rt.store.users.putSiteRoles('auditor', ['site-viewer'], now);
  await rt.store.users.putMembership('acme', 'ada', ['org-admin'], now);
  await rt.store.users.putMembership('acme', 'mo', ['org-member'], now);
  await rt.store.users.putMembership('acme', 'vic', ['org-viewer'], now);
  await rt.store.users.putMembership('globex', 'gus', ['org-admin'], now);
  const api = createApi({ name: 'admin', routes: { ...new OrgAdmin(rt).routes(), ...new PolicyAdmin(rt).routes() }, resolveCaller: (c) => rt.callers.fromContext(c), logger: rt.logger });
  const call = async (event: HttpApiEvent) => {
    const res = await api(event);
    return { status: res.statusCode, headers: res.headers, body: res.body ? JSON.parse(res.body) : undefined };
  };
  const items = async () => (await rt.store.db.client.send(new ScanCommand({ TableName: rt.tableName }))).Items!.map((i) => unmarshall(i));
  return { rt, idp, call, items };
}
