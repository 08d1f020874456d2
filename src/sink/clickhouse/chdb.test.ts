import { ConfigError } from '../../errors';
import { chdbTarget, withStatementSettings } from './chdb';

describe('chdbTarget', () => {
  it('leaves every other URL to the HTTP client', () => {
    expect(chdbTarget('http://127.0.0.1:8123')).toBeUndefined();
    expect(chdbTarget('https://clickhouse.prod:8443')).toBeUndefined();
  });

  it('reads the data directory and the optional Python interpreter', () => {
    expect(chdbTarget('chdb:///var/lib/sluice-chdb')).toEqual({ dir: '/var/lib/sluice-chdb', python: undefined });
    expect(chdbTarget('chdb:///tmp/d?python=/opt/venv/bin/python')).toEqual({
      dir: '/tmp/d',
      python: '/opt/venv/bin/python',
    });
  });

  it('refuses a relative or missing directory, a host, and a relative interpreter', () => {
    for (const url of ['chdb://relative/dir', 'chdb:///', 'chdb:///tmp/d?python=venv/bin/python']) {
      expect(() => chdbTarget(url)).toThrow(ConfigError);
    }
  });
});

describe('withStatementSettings', () => {
  // chdb would otherwise SET them on the session, where an insert's dedup token outlives the insert.
  it("puts an insert's settings in its own SETTINGS clause, before FORMAT", () => {
    expect(
      withStatementSettings('INSERT INTO db.t FORMAT JSONEachRow', {
        insert_deduplication_token: 'abc',
        async_insert: 0,
      }),
    ).toBe("INSERT INTO db.t SETTINGS insert_deduplication_token = 'abc', async_insert = 0 FORMAT JSONEachRow");
    expect(withStatementSettings('SELECT 1 \nFORMAT JSONEachRow', { enable_analyzer: true })).toBe(
      'SELECT 1 SETTINGS enable_analyzer = 1 \nFORMAT JSONEachRow',
    );
  });

  it('escapes quotes and backslashes in string values, and refuses setting names that are not identifiers', () => {
    expect(withStatementSettings('INSERT INTO t FORMAT JSONEachRow', { insert_deduplication_token: "a'b\\c" })).toBe(
      "INSERT INTO t SETTINGS insert_deduplication_token = 'a\\'b\\\\c' FORMAT JSONEachRow",
    );
    expect(() => withStatementSettings('SELECT 1 FORMAT JSON', { 'x = 1; DROP': 1 })).toThrow(
      /invalid ClickHouse setting name/,
    );
  });

  it('drops the HTTP interface settings and leaves a statement without settings as it is', () => {
    expect(withStatementSettings('CREATE TABLE t (k String) ENGINE = Memory', { wait_end_of_query: 1 })).toBe(
      'CREATE TABLE t (k String) ENGINE = Memory',
    );
    expect(withStatementSettings('DROP TABLE t', {})).toBe('DROP TABLE t');
  });

  it('refuses settings for a statement that has no place for them, rather than dropping them', () => {
    expect(() => withStatementSettings('DROP TABLE t', { mutations_sync: 2 })).toThrow(
      /cannot be sent with this statement/,
    );
  });
});
