import { ConfigError } from '../errors';
import { parseLogLevel, type LogLevel } from '../log';
import { DEFAULT_TABLE_NAME } from '../store/schema';
import { parseIssuers, type IssuerConfig } from './issuers';

/** Runtime settings (DESIGN §2), parsed from an environment-like record. */
export interface Settings {
  tableName: string;
  issuers: IssuerConfig[];
  cacheTtlSeconds: number;
  httpResponse: 'simple' | 'iam';
  logLevel: LogLevel;
  /** `GATEHOUSE_POLICY_SET`: the policy set this function decides with, whatever API calls it. */
  policySet?: string;
}

/** Policy set names: lower-case slugs. */
export const POLICY_SET_RE = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Parses settings. Invalid values fail here, at cold start, with a message naming
 * the variable: never a silent fallback.
 */
export function parseSettings(env: Record<string, string | undefined>): Settings {
  const tableName = env.GATEHOUSE_TABLE?.trim() || DEFAULT_TABLE_NAME;
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(tableName)) throw new ConfigError(`GATEHOUSE_TABLE: invalid table name ${JSON.stringify(tableName)}`);
  const ttlRaw = env.GATEHOUSE_CACHE_TTL_SECONDS?.trim();
  let cacheTtlSeconds = 30;
  if (ttlRaw !== undefined && ttlRaw !== '') {
    if (!/^\d{1,4}$/.test(ttlRaw) || Number(ttlRaw) > 3600) {
      throw new ConfigError(`GATEHOUSE_CACHE_TTL_SECONDS: expected an integer 0..3600, got ${JSON.stringify(ttlRaw)}`);
    }
    cacheTtlSeconds = Number(ttlRaw);
  }
  const httpResponse = env.GATEHOUSE_HTTP_RESPONSE?.trim() || 'simple';
  if (httpResponse !== 'simple' && httpResponse !== 'iam') {
    throw new ConfigError(`GATEHOUSE_HTTP_RESPONSE: expected "simple" or "iam", got ${JSON.stringify(httpResponse)}`);
  }
  let logLevel: LogLevel;
  try {
    logLevel = parseLogLevel(env.GATEHOUSE_LOG_LEVEL?.trim());
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const policySet = env.GATEHOUSE_POLICY_SET?.trim() || undefined;
  if (policySet !== undefined && !POLICY_SET_RE.test(policySet)) {
    throw new ConfigError(`GATEHOUSE_POLICY_SET: expected a policy set name (lower-case letters, digits, dashes), got ${JSON.stringify(policySet)}`);
  }
  return { tableName, issuers: parseIssuers(env.GATEHOUSE_ISSUERS), cacheTtlSeconds, httpResponse, logLevel, ...(policySet ? { policySet } : {}) };
}
