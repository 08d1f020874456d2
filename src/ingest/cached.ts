/**
 * `probe`, run at most once per `ttlMs`: callers while it runs share the call
 * in flight, and callers within `ttlMs` of its end share its outcome (a
 * failure too). For checks of other services that unauthenticated requests
 * can trigger: their cost then follows the clock, not the request rate.
 */
export function cachedFor<T>(ttlMs: number, probe: () => Promise<T>, now: () => number = Date.now): () => Promise<T> {
  let running: Promise<T> | undefined;
  let last: { endedAt: number; outcome: Promise<T> } | undefined;
  return () => {
    if (running) return running;
    if (last && now() - last.endedAt < ttlMs) return last.outcome;
    const outcome = probe();
    running = outcome;
    const settle = () => {
      running = undefined;
      last = { endedAt: now(), outcome };
    };
    outcome.then(settle, settle);
    return outcome;
  };
}
