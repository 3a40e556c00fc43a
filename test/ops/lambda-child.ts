/**
 * A stand-in for Lambda's Node.js runtime with `LogFormat: JSON`, run as a child process
 * by lambda-stdout.test.ts: it patches `console.*` the way the runtime does (each call
 * becomes `{"timestamp","level","requestId","message"}` with the text inside `message`,
 * `console.log` labelled INFO), sets `_X_AMZN_TRACE_ID` per invocation, imports the real
 * handler modules and invokes them with a Lambda context. Its stdout is what CloudWatch
 * would receive; the answers go to the file named by the plan.
 *
 * Usage: tsx test/ops/lambda-child.ts <plan.json>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

interface Plan {
  env: Record<string, string>;
  calls: { module: string; event: unknown; requestId: string; trace: string }[];
  out: string;
}

const plan = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Plan;
Object.assign(process.env, plan.env, { AWS_LAMBDA_LOG_FORMAT: 'JSON' });

let requestId: string | undefined;
const wrap = (level: string) => (...args: unknown[]) => {
  process.stdout.write(JSON.stringify({ timestamp: new Date().toISOString(), level, requestId, message: format(...args) }) + '\n');
};
console.log = console.info = wrap('INFO');
console.debug = wrap('DEBUG');
console.trace = wrap('TRACE');
console.warn = wrap('WARN');
console.error = wrap('ERROR');

const results: { requestId: string; answer?: unknown; error?: string }[] = [];
for (const call of plan.calls) {
  const mod = (await import(pathToFileURL(resolve(call.module)).href)) as { handler: (e: unknown, c: unknown) => Promise<unknown> };
  requestId = call.requestId;
  process.env._X_AMZN_TRACE_ID = call.trace;
  const context = { awsRequestId: call.requestId, functionName: plan.env.AWS_LAMBDA_FUNCTION_NAME, getRemainingTimeInMillis: () => 10_000 };
  try {
    results.push({ requestId: call.requestId, answer: await mod.handler(call.event, context) });
  } catch (err) {
    results.push({ requestId: call.requestId, error: (err as Error).message });
  }
}
writeFileSync(plan.out, JSON.stringify(results));
