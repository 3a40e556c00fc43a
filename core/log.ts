/** Structured JSON logging. The sink is injected; functions/ wires it to stdout. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  /** Whether a level is written (lets hot paths skip building fields). */
  enabled?(level: LogLevel): boolean;
}

/** Parses a log level name; anything else is an error naming the value. */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined || value === '') return 'info';
  if (value in ORDER) return value as LogLevel;
  throw new Error(`GATEHOUSE_LOG_LEVEL: expected debug, info, warn or error, got ${JSON.stringify(value)}`);
}

/**
 * A logger writing one JSON object per line: `{ level, event, time, ...fields }`.
 * Callers must never pass credentials, hashes or JWTs in `fields`.
 */
export function createLogger(options: {
  level?: LogLevel;
  sink?: (line: string) => void;
  now?: () => number;
  base?: Record<string, unknown>;
} = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const sink = options.sink ?? ((line: string) => console.log(line));
  const now = options.now ?? Date.now;
  const write = (level: LogLevel) => (event: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    let line: string;
    try {
      line = JSON.stringify({ level, event, time: new Date(now()).toISOString(), ...options.base, ...fields });
    } catch {
      line = JSON.stringify({ level, event, time: new Date(now()).toISOString(), note: 'unserializable fields' });
    }
    sink(line);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), enabled: (level) => ORDER[level] >= min };
}

/** A logger that drops everything (tests that do not inspect logs). */
export const silentLogger: Logger = createLogger({ sink: () => {} , level: 'error' });
