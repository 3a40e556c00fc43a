import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { StoreError } from '../../errors';

/**
 * How long a DynamoDB call may take (DESIGN §8: a store that stalls fails closed within
 * 2 s). Per attempt: the connection within `connectMs`, the answer's headers within
 * `attemptMs`, and no silence longer than `attemptMs` while the body streams. Per call:
 * one `callMs` deadline over every attempt and the back-off between them.
 */
export interface StoreTimeBudget {
  maxAttempts: number;
  connectMs: number;
  attemptMs: number;
  callMs: number;
}

/**
 * A DynamoDB client whose every command runs under a {@link StoreTimeBudget}: the SDK's
 * HTTP handler gets connect, request and socket-idle timeouts (by default it has none,
 * and a listener that never answers holds a call forever), and each `send` is aborted
 * when `callMs` has passed, retries included. A call that runs out of time fails with
 * `StoreError('store-timeout')`, which the adapter's guard passes on unchanged, so the
 * authorizer fails closed and the admin functions answer 503, both logging the code.
 */
export class TimeBudgetedClient extends DynamoDBClient {
  readonly budget: StoreTimeBudget;

  constructor(config: DynamoDBClientConfig, budget: StoreTimeBudget) {
    super({
      ...config,
      maxAttempts: budget.maxAttempts,
      requestHandler: {
        connectionTimeout: budget.connectMs,
        requestTimeout: budget.attemptMs,
        // Without this the SDK only logs a warning when requestTimeout passes.
        throwOnRequestTimeout: true,
        socketTimeout: budget.attemptMs,
      },
    });
    this.budget = budget;
  }

  // Only the promise form is used in gatehouse; the callback forms pass through unchanged.
  override send(command: any, optionsOrCb?: any, cb?: any): any {
    if (typeof optionsOrCb === 'function' || cb !== undefined) return super.send(command, optionsOrCb, cb);
    return this.sendWithin(command, optionsOrCb as { abortSignal?: AbortSignal } | undefined);
  }

  private async sendWithin(command: { constructor: { name: string } }, options: { abortSignal?: AbortSignal } | undefined): Promise<unknown> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.budget.callMs);
    const signal = options?.abortSignal ? AbortSignal.any([options.abortSignal, deadline.signal]) : deadline.signal;
    try {
      return await super.send(command as never, { ...options, abortSignal: signal });
    } catch (err) {
      const name = (err as { name?: unknown })?.name;
      if (deadline.signal.aborted || name === 'TimeoutError') {
        const what = command.constructor.name.replace(/Command$/, '');
        throw new StoreError('store-timeout', `DynamoDB ${what} did not answer within ${this.budget.callMs} ms`, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}
