import { expectOutageHandled, runOutage, type OutageResult } from '../helpers/outage-run';
import { startPrivateStack, type PrivateService, type PrivateStack } from '../helpers/private-stack';
import { countsOf } from '../helpers/reference';
import { recordScenario } from './results';
import { SCALE, sizes } from './scale';

/**
 * docs/design.md §3.4 and §3.8 on one private stack (the shared one is never
 * stopped): Kafka, Redis (restarted from its AOF) and ClickHouse each stopped
 * mid-run while the reference stream works, then started again. Each
 * scenario has its own topic, group, database and key prefix. The processor
 * must pause rather than let events through or commit what is not stored,
 * hold a bounded number of rows, resume by itself, and end with exactly the
 * generator's answer; first-half records re-sent around the outage are
 * suppressed only if the dedup marks survived it.
 */
describe(`the reference stream with a service down mid-run (${SCALE} scale)`, () => {
  let stack: PrivateStack;
  beforeAll(async () => {
    stack = await startPrivateStack('faults_outages');
  }, 180_000);
  afterAll(async () => stack?.teardown(), 90_000);

  const { before, during } = sizes.outages;
  // Kafka last: the embedded schema registry does not survive a Kafka restart (its reader crashes for good),
  // and the other scenarios register their schema through it.
  const cases: [PrivateService, number][] = [
    ['redis', sizes.outages.redisMs],
    ['clickhouse', sizes.outages.clickhouseMs],
    ['kafka', sizes.outages.kafkaMs],
  ];

  it.each(cases)(
    '%s down for %d ms: resumes by itself and loses or duplicates nothing',
    async (service, outageMs) => {
      const started = Date.now();
      const result: OutageResult = await runOutage(stack, service, {
        label: `f_out_${service}`,
        before,
        during,
        outageMs,
      });
      const { figures } = result;
      recordScenario({
        scenario: `${service} down ${Math.round(outageMs / 1000)} s`,
        ...countsOf(result.report, result.expected),
        seconds: (Date.now() - started) / 1000,
        figures: { ...figures },
      });
      expectOutageHandled(result);
    },
    sizes.timeoutMs,
  );
});
