"""The ClickHouse engine of a chdb Python package, serving one Node process.

Started by src/sink/clickhouse/chdb.ts for a `clickhouse.url` of the form
`chdb:///data/dir?python=/venv/bin/python`, so the project's SQL can run on
the engine versions the PyPI chdb releases embed (24.8, 25.8, 26.9) while
the npm package brings only one. One child per data directory: chdb binds
one data directory per process, and every client of the Node process
shares this one session, one statement at a time.

Requests come on file descriptor 4, one JSON object a line (stdin stays
empty: the engine reads an INSERT's data from stdin when it can, as
clickhouse-local does, and would wait there or swallow requests):
  {"id": 1, "db": "sluice" | null, "sql": "...", "format": "JSONEachRow" | null, "params": {...} | null}
Answers go to file descriptor 3 (never stdout, where the engine may print):
  {"id": 1, "ok": true, "data": "<base64>", "rows_read": n, "bytes_read": n, "elapsed": s}
  {"id": 1, "ok": false, "error": "Code: 60. DB::Exception: ..."}
"""

import base64
import json
import os
import sys


def number(result, name):
    # A method in some chdb releases, a plain attribute in others.
    value = getattr(result, name, 0)
    return value() if callable(value) else value


def main():
    path = sys.argv[1]
    from chdb import session

    sess = session.Session(path)
    # A server's default where chdb's differs (SERVER_DEFAULTS in chdb.ts): 64-bit integers quoted in JSON.
    sess.query("SET output_format_json_quote_64bit_integers = 1")
    out = os.fdopen(3, "w", buffering=1)
    out.write(json.dumps({"id": 0, "ok": True, "version": sess.query("SELECT version()", "TSV").bytes().decode().strip()}) + "\n")
    # The session's current database: the Node side sends each statement's
    # database (a name it has checked), and a switch costs one USE.
    current = None
    for line in os.fdopen(4, "r"):
        request = json.loads(line)
        try:
            database = request.get("db") or "default"
            if database != current:
                current = None
                sess.query("USE " + database)
                current = database
            fmt = request.get("format") or "TabSeparated"
            params = request.get("params")
            if params:
                # Query parameters reach the engine only through chdb 4.x's Python API.
                result = sess.query(request["sql"], fmt, params=params)
            else:
                result = sess.query(request["sql"], fmt)
            answer = {
                "id": request["id"],
                "ok": True,
                "data": base64.b64encode(result.bytes() or b"").decode(),
                "rows_read": number(result, "rows_read"),
                "bytes_read": number(result, "bytes_read"),
                "elapsed": number(result, "elapsed"),
            }
        except Exception as err:  # the engine's own message, as the HTTP interface would send it
            answer = {"id": request["id"], "ok": False, "error": str(err)}
        out.write(json.dumps(answer) + "\n")
    sess.close()


if __name__ == "__main__":
    main()
