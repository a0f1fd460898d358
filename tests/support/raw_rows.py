"""Raw (landed) rows written straight into a warehouse's source tables, for cases sample data lacks."""


def insert(con, table: str, rows: list[dict]) -> None:
    """Insert rows by column name (unnamed columns stay null)."""
    for row in rows:
        names = ", ".join(f'"{c}"' for c in row)
        con.execute(f"insert into {table} ({names}) values ({', '.join('?' for _ in row)})", list(row.values()))


def customer(id_, email, first_name=None, last_name=None, *, synced="2026-10-20 00:00:00", updated="2026-10-19 00:00:00",
             deleted=False, **extra) -> dict:
    """A shopify.customer row; any column can be given in `extra`."""
    return {"id": id_, "email": email, "first_name": first_name, "last_name": last_name, "state": "enabled",
            "email_marketing_consent_state": "subscribed", "currency": "USD", "created_at": "2026-01-15 00:00:00",
            "updated_at": updated, "_fivetran_synced": synced, "_fivetran_deleted": deleted, **extra}
