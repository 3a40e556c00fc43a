/**
 * Structured JSON logging, one object per line, in the shape Lambda's JSON log format
 * and Powertools users expect: `level` (upper case), `message`, `timestamp`, `service`,
 * the invocation's keys, then the event's own fields. The sink is injected; functions/
 * wires it to stdout.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** Lambda reads `level` to filter and label a JSON line; these are its names. */
const LEVEL_JSON: Record<LogLevel, string> = { debug: '"DEBUG"', info: '"INFO"', warn: '"WARN"', error: '"ERROR"' };

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  /** Whether an event of this level is written or observed (lets hot paths skip building fields). */
  enabled?(level: LogLevel): boolean;
}

/** Parses a log level name; anything else is an error naming the value. */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined || value === '') return 'info';
  if (value in ORDER) return value as LogLevel;
  throw new Error(`GATEHOUSE_LOG_LEVEL: expected debug, info, warn or error, got ${JSON.stringify(value)}`);
}

/**
 * The level named by Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`:
 * TRACE, DEBUG, INFO, WARN, ERROR, FATAL), as one of ours; undefined when unset or unknown.
 */
export function fromLambdaLogLevel(value: string | undefined): LogLevel | undefined {
  switch (value?.trim().toUpperCase()) {
    case 'TRACE':
    case 'DEBUG':
      return 'debug';
    case 'INFO':
      return 'info';
    case 'WARN':
      return 'warn';
    case 'ERROR':
    case 'FATAL':
      return 'error';
    default:
      return undefined;
  }
}

/** Keys every line carries itself; an event field of the same name is written as `<name>_`. */
export const RESERVED_LOG_KEYS = ['level', 'message', 'timestamp', 'service', 'cold_start', 'function_request_id', 'xray_trace_id', 'correlation_id'] as const;

/**
 * The keys of one invocation (Powertools' names), serialised once so that every line
 * of the invocation only appends a string.
 */
export class LogKeys {
  /** `,"key":value` pairs, or the empty string. */
  readonly json: string;

  constructor(keys: {
    /** Lambda's request id (`context.awsRequestId`). */
    function_request_id?: string | undefined;
    /** The X-Ray trace id (the `Root` of `_X_AMZN_TRACE_ID`). */
    xray_trace_id?: string | undefined;
    /** API Gateway's request id (`requestContext.requestId`). */
    correlation_id?: string | undefined;
    /** True on the first invocation of a container. */
    cold_start?: boolean | undefined;
  }) {
    let json = '';
    if (keys.cold_start !== undefined) json += `,"cold_start":${keys.cold_start}`;
    for (const k of ['function_request_id', 'xray_trace_id', 'correlation_id'] as const) {
      const v = keys[k];
      if (typeof v === 'string' && v !== '') json += `,"${k}":${JSON.stringify(v.slice(0, 256))}`;
    }
    this.json = json;
  }
}

/** Writes whole lines, whatever the level: what both the logger and metrics lines go through. */
export interface LineWriter {
  write(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

/** Sees every event while `active()` says so, whatever the configured level (metrics taps). */
export interface LogObserver {
  active(): boolean;
  observe(level: LogLevel, message: string, fields: Record<string, unknown> | undefined): void;
}

/**
 * A line writer: `{"level":"INFO","message":…,"timestamp":…,"service":…,<keys>,<fields>}`.
 * `keys` is read for every line (the current invocation's keys). A field named like a
 * reserved key is renamed `<name>_` rather than overwrite it; fields that cannot be
 * serialised are replaced by a note (the line is still written).
 */
export function createLineWriter(options: {
  sink: (line: string) => void;
  now?: () => number;
  service?: string;
  keys?: () => LogKeys | undefined;
  base?: Record<string, unknown>;
}): LineWriter {
  const { sink } = options;
  const now = options.now ?? Date.now;
  const service = `,"service":${JSON.stringify(options.service ?? 'gatehouse')}`;
  const keys = options.keys;
  const base = options.base && Object.keys(options.base).length > 0 ? fieldsJson(options.base) : '';
  // The lines of one invocation mostly share a millisecond: format it once.
  let lastMs = NaN;
  let lastIso = '';
  return {
    write(level, message, fields) {
      const ms = now();
      if (ms !== lastMs) {
        lastMs = ms;
        lastIso = new Date(ms).toISOString();
      }
      let line = `{"level":${LEVEL_JSON[level]},"message":${JSON.stringify(message)},"timestamp":"${lastIso}"${service}`;
      if (keys) line += keys()?.json ?? '';
      line += base;
      if (fields) line += fieldsJson(fields);
      sink(line + '}');
    },
  };
}

/** `,"k":v,…` for the fields, or a note when they cannot be serialised. */
function fieldsJson(fields: Record<string, unknown>): string {
  let safe = fields;
  for (const k of RESERVED_LOG_KEYS) {
    if (Object.hasOwn(fields, k)) {
      safe = {};
      for (const [key, v] of Object.entries(fields)) safe[(RESERVED_LOG_KEYS as readonly string[]).includes(key) ? `${key}_` : key] = v;
      break;
    }
  }
  let json: string;
  try {
    json = JSON.stringify(safe);
  } catch {
    return ',"note":"unserializable fields"';
  }
  return json.length > 2 ? `,${json.slice(1, -1)}` : '';
}

/**
 * A logger writing one JSON object per line through `writer` (or, given only `sink`,
 * a writer of its own; given neither, nothing is written). An `observer` sees every event whatever the level while it is
 * active (the functions/ wrapper derives metrics from the events this way). Callers
 * must never pass credentials, hashes or JWTs in `fields`.
 */
export function createLogger(options: {
  level?: LogLevel;
  sink?: (line: string) => void;
  writer?: LineWriter;
  now?: () => number;
  base?: Record<string, unknown>;
  observer?: LogObserver;
} = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const writer =
    options.writer ??
    createLineWriter({ sink: options.sink ?? (() => {}), ...(options.now ? { now: options.now } : {}), ...(options.base ? { base: options.base } : {}) });
  const observer = options.observer;
  const log = (level: LogLevel) => (event: string, fields?: Record<string, unknown>) => {
    if (observer?.active()) observer.observe(level, event, fields);
    if (ORDER[level] >= min) writer.write(level, event, fields);
  };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    enabled: (level) => ORDER[level] >= min || observer?.active() === true,
  };
}

/** A logger that drops everything (tests that do not inspect logs). */
export const silentLogger: Logger = createLogger({ sink: () => {}, level: 'error' });
