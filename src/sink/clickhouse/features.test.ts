import { featuresFromVersion, parseVersion } from './features';

describe('ClickHouse server features from the version', () => {
  it('parses major.minor from version() strings', () => {
    expect(parseVersion('18.16.1')).toEqual({ major: 18, minor: 16 });
    expect(parseVersion('24.8.4.13')).toEqual({ major: 24, minor: 8 });
    expect(() => parseVersion('latest')).toThrow(/cannot parse/);
  });

  it('18.16 has none of the newer insert features; 22.2 is the first with insert_deduplication_token', () => {
    const old = featuresFromVersion('18.16.1');
    expect([
      old.insertDeduplicationToken,
      old.nonReplicatedDeduplicationWindow,
      old.asyncInsert,
      old.dateTime64,
      old.tableComments,
      old.viewFiltersReachFinal,
    ]).toEqual([false, false, false, false, false, false]);
    expect(featuresFromVersion('22.1.3').insertDeduplicationToken).toBe(false);
    expect(featuresFromVersion('22.2.1').insertDeduplicationToken).toBe(true);
    expect(featuresFromVersion('20.1.2.4').dateTime64).toBe(true);
    const current = featuresFromVersion('24.3.1');
    expect([
      current.insertDeduplicationToken,
      current.nonReplicatedDeduplicationWindow,
      current.asyncInsert,
      current.tableComments,
    ]).toEqual([true, true, true, true]);
    expect(current.viewFiltersReachFinal).toBe(false);
    expect(featuresFromVersion('24.8.4.1').viewFiltersReachFinal).toBe(true);
    expect(featuresFromVersion('26.7.2.1').viewFiltersReachFinal).toBe(true);
  });
});
