"""Rows destinations refused, as an operator reads them: the open ones (not delivered since), and one run's
grouped by reason. Samples name records by Relay's key, never by an email or phone."""

import duckdb

# The latest refusal of each (sync, record) that no acknowledged delivery followed.
OPEN = """
    select r.sync_name, r.record_key, r.kind, r.status_code, r.reason, r.rejected_at, r.run_id
    from relay.sync_rejections r
    where ($sync is null or r.sync_name = $sync)
      and not exists (select 1 from relay.sync_deliveries d where d.sync_name = r.sync_name
                      and d.record_key = r.record_key and d.acked_at >= r.rejected_at)
    qualify row_number() over (partition by r.sync_name, r.record_key order by r.rejected_at desc) = 1
"""


def open_rejections(con: duckdb.DuckDBPyConnection, sync: str | None = None) -> list[dict]:
    cursor = con.execute(OPEN + " order by sync_name, rejected_at desc, record_key", {"sync": sync})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def by_reason(con: duckdb.DuckDBPyConnection, *, run_id: str | None = None, sync: str | None = None,
              samples: int = 3) -> list[dict]:
    """One run's refusals (or the open ones of `sync`, or of every sync), by reason: count and sample keys."""
    source = ("select * from relay.sync_rejections where run_id = $run" if run_id is not None
              else OPEN)
    params = {"run": run_id} if run_id is not None else {"sync": sync}
    rows = con.execute(f"""
        select sync_name, left(reason, 300) as reason, count(*) as rows,
               list(record_key order by record_key)[1:{int(samples)}] as sample_keys
        from ({source}) group by all order by rows desc, sync_name, reason""", params).fetchall()
    return [dict(zip(("sync_name", "reason", "rows", "sample_keys"), row)) for row in rows]
