import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { keys } from '../schema';
import { type Db, guard, queryPage, toItem } from './db';

/** Audit records live 365 days (DynamoDB TTL). */
export const AUDIT_TTL_SECONDS = 365 * 24 * 3600;

/** One audit record: who did what to what, and how it ended. */
export interface AuditRecord {
  /** Epoch seconds. */
  at: number;
  actor: string;
  action: string;
  target: string;
  outcome: 'allowed' | 'denied' | 'failed';
  reason?: string;
}

/**
 * Audit log: one partition per UTC day (`AUDIT#yyyy-mm-dd`), sorted by time, so a
 * time window is a handful of Queries and no partition grows without bound.
 */
export class AuditRepo {
  constructor(private readonly db: Db) {}

  async write(record: AuditRecord): Promise<void> {
    const iso = new Date(record.at * 1000).toISOString();
    await guard('PutItem audit', () =>
      this.db.client.send(
        new PutItemCommand({
          TableName: this.db.tableName,
          Item: toItem({
            pk: keys.audit(iso.slice(0, 10)),
            sk: `${iso}#${randomBytes(6).toString('hex')}`,
            type: 'audit',
            ...record,
            expiresAt: record.at + AUDIT_TTL_SECONDS,
          }),
        }),
      ),
    );
  }

  /** Records of one UTC day (`yyyy-mm-dd`), newest first, between `since` and `until` (epoch s). */
  async listDay(day: string, options: { since?: number; until?: number; limit?: number; cursor?: string }): Promise<{ items: AuditRecord[]; nextCursor?: string }> {
    const from = options.since !== undefined ? new Date(options.since * 1000).toISOString() : '0';
    const to = options.until !== undefined ? new Date(options.until * 1000).toISOString() + '~' : '~';
    return queryPage(
      this.db,
      'Query audit',
      { partition: { name: 'pk', value: keys.audit(day) }, range: { between: [from, to] }, newestFirst: true, limit: options.limit ?? 50, ...(options.cursor ? { cursor: options.cursor } : {}) },
      (i) => ({
        at: Number(i.at),
        actor: String(i.actor),
        action: String(i.action),
        target: String(i.target),
        outcome: i.outcome as AuditRecord['outcome'],
        ...(typeof i.reason === 'string' ? { reason: i.reason } : {}),
      }),
    );
  }
}
