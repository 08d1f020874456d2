import { ServiceError } from './errors';

/** Rejects with a retriable ServiceError "<what> did not answer within <ms> ms" when `promise` takes longer; the timer never outlives it. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new ServiceError(what, `${what} did not answer within ${ms} ms`, { retriable: true })),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}
