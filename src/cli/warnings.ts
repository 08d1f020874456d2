/**
 * Process warnings as Node.js prints them, less one: kafkajs arms a timer with a negative delay
 * (an open bug of its request queue, tulios/kafkajs#1751), which Node.js 24 reports as
 * TimeoutNegativeWarning. The timer fires at once, as kafkajs means it to, so the warning says
 * nothing an operator can act on, and it lands on the stderr that scripts read for errors.
 */
export function quietKnownWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') return;
    process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
  });
}
