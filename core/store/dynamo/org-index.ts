import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { keys, type OrgChildKind } from '../schema';
import { type Db, toItem } from './db';

/**
 * The org's own index of what grants access in it, and the condition every such write
 * carries. Deleting an org marks it first (`deletingAt` on the org item); from then on
 * the condition below fails every write that would add a member, an org token, an
 * invitation or an org role, and everything written before the mark has an index item
 * in the org's partition that a strongly consistent Query finds. (GSI1 also lists
 * children, but an index is eventually consistent: the cascade cannot rely on it.)
 */

/**
 * The transaction item that lets a write into an org happen only while the org exists
 * and is not being deleted. It is the serialisation point with the deletion: a write
 * that commits before the mark is found by the cascade, one after it fails here.
 */
export function orgAliveCheck(db: Db, orgId: string): TransactWriteItem {
  return {
    ConditionCheck: {
      TableName: db.tableName,
      Key: toItem({ pk: keys.org(orgId), sk: keys.orgSk() }),
      // Exists (never a write into a deleted or never-created org) and is not being deleted.
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(deletingAt)',
    },
  };
}

/** The index item of one child in its org's partition (written with the child). */
export function orgIndexPut(db: Db, orgId: string, kind: OrgChildKind, childId: string): TransactWriteItem {
  return {
    Put: {
      TableName: db.tableName,
      Item: toItem({ pk: keys.org(orgId), sk: keys.orgChildSk(kind, childId), type: 'org-index', orgId, kind, childId }),
    },
  };
}

/** Deletes the index item of one child (with the child, or once the cascade has dealt with it). */
export function orgIndexDelete(db: Db, orgId: string, kind: OrgChildKind, childId: string): TransactWriteItem {
  return { Delete: { TableName: db.tableName, Key: toItem({ pk: keys.org(orgId), sk: keys.orgChildSk(kind, childId) }) } };
}
