/** Plain output for humans and scripts; diagnostics go to stderr. */
export function printLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function printError(line: string): void {
  process.stderr.write(`sluice: ${line}\n`);
}
