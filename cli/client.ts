/**
 * The CLI's HTTP client for the admin API. It holds the credential and never shows it:
 * not in errors, not in `--debug` lines, not in `--json` output.
 */

/** Exit codes scripts can rely on (docs/cli.md). */
export const EXIT = {
  /** The command did what it was asked. */
  ok: 0,
  /** The API answered with an error (4xx/5xx), or the answer was not what was expected. */
  refused: 1,
  /** The command line or the configuration is wrong (unknown command or option, no credential, bad URL). */
  usage: 2,
  /** No answer from the API at all (connection refused, DNS, TLS, timeout). */
  unreachable: 3,
  /** A conditional write was refused (412): what it was based on changed since it was read. */
  conflict: 4,
  /** `policy test`: at least one policy test failed. */
  testsFailed: 5,
} as const;

/** The API answered with an error. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: unknown) {
    super(message);
    this.name = 'ApiError';
  }
}

/** No HTTP answer. `sent` is false when the request surely never reached the server. */
export class Unreachable extends Error {
  constructor(message: string, readonly sent: boolean) {
    super(message);
    this.name = 'Unreachable';
  }
}

/** A configuration problem found before any request (exit 2). */
export class ConfigProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigProblem';
  }
}

export interface ClientOptions {
  baseUrl: string;
  credential: string | undefined;
  /** Where the credential came from, for messages (`GATEHOUSE_TOKEN`, `--token-file`). */
  credentialSource: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  debug?: (line: string) => void;
}

export interface Answer {
  status: number;
  body: unknown;
  /** The answer's ETag header (the version of what was read or written), when it has one. */
  etag?: string;
}

// One line of visible ASCII: what a bearer token or a JWT is. Anything else (a newline
// from `echo`, a space) would end up in an error message of the HTTP library.
const CREDENTIAL_RE = /^[\x21-\x7e]{1,16384}$/;

/** Checks a base URL: http(s), no credentials or query in it. */
export function checkBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigProblem(`the API URL ${JSON.stringify(raw.slice(0, 200))} is not a URL (set GATEHOUSE_URL or --url, e.g. http://127.0.0.1:3000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigProblem('the API URL must be http:// or https://');
  if (url.username || url.password) throw new ConfigProblem('the API URL must not carry credentials (use GATEHOUSE_TOKEN)');
  if (url.search || url.hash) throw new ConfigProblem('the API URL must not have a query or fragment');
  return url.href.replace(/\/+$/, '');
}

function networkReason(err: unknown): { text: string; sent: boolean } {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code ?? (err as { name?: string })?.name ?? 'error';
  if (code === 'TimeoutError' || code === 'AbortError') return { text: 'timed out', sent: true };
  if (code === 'ECONNREFUSED') return { text: 'connection refused', sent: false };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { text: 'host not found', sent: false };
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return { text: 'connection closed before an answer', sent: true };
  return { text: String(code), sent: true };
}

export class ApiClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.base = checkBaseUrl(options.baseUrl);
    this.fetch = options.fetch ?? fetch;
  }

  get baseUrl(): string {
    return this.base;
  }

  /** Sends one request; resolves with a 2xx answer, throws ApiError or Unreachable otherwise. */
  async call(method: string, path: string, request: { body?: unknown; query?: Record<string, string | undefined>; headers?: Record<string, string> } = {}): Promise<Answer> {
    const credential = this.options.credential;
    if (credential === undefined || credential === '') throw new ConfigProblem(`no credential: set GATEHOUSE_TOKEN (or --token-file) to a gatehouse token or a JWT`);
    if (!CREDENTIAL_RE.test(credential)) throw new ConfigProblem(`the credential from ${this.options.credentialSource} is not one line of visible characters (a trailing newline or a space?)`);
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(request.query ?? {})) if (v !== undefined) query.set(k, v);
    const url = `${this.base}${path}${query.size ? `?${query}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers, authorization: `Bearer ${credential}` };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    const started = Date.now();
    this.options.debug?.(`> ${method} ${url}`);
    for (const [k, v] of Object.entries(headers)) this.options.debug?.(`> ${k}: ${k === 'authorization' ? 'Bearer [hidden]' : k === 'idempotency-key' ? '[hidden]' : v}`);
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(url, {
        method,
        headers,
        ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
      text = await res.text();
    } catch (err) {
      const why = networkReason(err);
      this.options.debug?.(`< no answer: ${why.text}`);
      throw new Unreachable(`cannot reach ${this.base} (${why.text})`, why.sent);
    }
    this.options.debug?.(`< ${res.status} (${Date.now() - started} ms)`);
    let body: unknown;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        throw new ApiError(res.status, 'not-json', `the answer (${res.status}) is not JSON: is ${this.base} a gatehouse admin API?`);
      }
    }
    const etag = res.headers.get('etag') ?? undefined;
    if (res.status >= 200 && res.status < 300) return { status: res.status, body, ...(etag !== undefined ? { etag } : {}) };
    const err = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
    if (err && typeof err.code === 'string') throw new ApiError(res.status, err.code, typeof err.message === 'string' ? err.message : '', err.details);
    // The gateway's own answers: {"message":"Unauthorized"}, {"message":"Forbidden"}, ...
    const gateway = (body as { message?: unknown } | undefined)?.message;
    const code = res.status === 401 ? 'unauthorized' : res.status === 403 ? 'forbidden' : res.status === 404 ? 'not-found' : `http-${res.status}`;
    throw new ApiError(res.status, code, typeof gateway === 'string' ? gateway : `HTTP ${res.status}`);
  }
}
