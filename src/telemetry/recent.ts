/** A warning or error the process logged, kept for the status page. */
export interface RecentProblem {
  time: string;
  level: 'warn' | 'error' | 'fatal';
  msg: string;
  /** The logged error text, if any (already redacted by the logger). */
  err?: string;
}

const CAPACITY = 50;
const problems: RecentProblem[] = [];

/** Called by the logger for every warn/error line; oldest entries fall off. */
export function rememberProblem(problem: RecentProblem): void {
  problems.push(problem);
  if (problems.length > CAPACITY) problems.splice(0, problems.length - CAPACITY);
}

/** The most recent problems, newest first. */
export function recentProblems(limit = 20): RecentProblem[] {
  return problems.slice(-limit).reverse();
}
