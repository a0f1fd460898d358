"""`relay report`: one static HTML page for data stakeholders, from the published copy: did each offer work
(lift and its 95% interval per month, redemption, leakage and abuse rates, margin impact), are the audiences
healthy (sizes over time, today's match rate, unreachable and stuck members, pending exits), and which
segment is which audience where (the catalog). Charts are Plotly's, with plotly.js inlined: the page works
offline, opened from disk or a bucket. Every job writes it next to the stakeholder copy."""

import html
import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from relay import publish

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left}th{background:#f4f4f4}.note{color:#555;font-size:.85rem}.empty{color:#a00}"""


def report_path() -> Path:
    return publish.published_path().with_name("report.html")


def write(target: Path | None = None) -> Path:
    """Render the report from the published copy to `target` (default: beside it), replaced atomically."""
    target = target or report_path()
    with publish.connect_published() as con:
        page = render(con)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(page)
    os.replace(tmp, target)
    return target


def render(con: duckdb.DuckDBPyConnection) -> str:
    from plotly.offline import get_plotlyjs

    sections = [_offers(con), _audiences(con), _catalog(con)]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    clock = _rows(con, "select max(as_of) as as_of from intermediate.int_as_of")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Relay report</title><style>{STYLE}</style>"
            f"<script>{get_plotlyjs()}</script></head><body><h1>Relay: offers and audiences</h1>"
            f"<p class='note'>Data as of {html.escape(str(clock[0]['as_of']) if clock else 'unknown')}; "
            f"written {generated} from the stakeholder copy ({html.escape(str(publish.published_path()))}).</p>"
            + "".join(sections) + "</body></html>")


def _rows(con, sql: str) -> list[dict]:
    """The query's rows as dicts; none when a table it reads is not built yet."""
    try:
        relation = con.execute(sql)
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row)) for row in relation.fetchall()]


def _offers(con) -> str:
    import plotly.graph_objects as go

    rows = _rows(con, "select * from marts.offer_lift order by offer, period")
    if not rows:
        return "<h2>Offers</h2><p class='empty'>marts.offer_lift is not built yet (the daily job builds it).</p>"
    lift, rates = go.Figure(), go.Figure()
    for offer in sorted({r["offer"] for r in rows}):
        mine = [r for r in rows if r["offer"] == offer]
        months = [r["period"].strftime("%Y-%m") for r in mine]
        lift.add_trace(go.Scatter(
            x=months, y=[r["lift_absolute"] for r in mine], mode="markers", name=f"{offer} lift",
            error_y={"type": "data", "symmetric": False,
                     "array": [_gap(r["lift_ci_high"], r["lift_absolute"]) for r in mine],
                     "arrayminus": [_gap(r["lift_absolute"], r["lift_ci_low"]) for r in mine]}))
        for column, label in (("redemption_rate", "redemption"), ("leakage_rate", "leakage"), ("abuse_rate", "abuse")):
            rates.add_trace(go.Scatter(x=months, y=[r[column] for r in mine], mode="lines+markers",
                                       name=f"{offer} {label} rate"))
    lift.add_hline(y=0, line_dash="dot")
    lift.update_layout(title="Incremental conversion (treated - holdout), with its 95% interval",
                       yaxis_tickformat=".0%", height=420)
    rates.update_layout(title="Redemption (treated), leakage and abuse rates", yaxis_tickformat=".0%", height=380)
    latest = [max((r for r in rows if r["offer"] == offer), key=lambda r: r["period"]) for offer in
              sorted({r["offer"] for r in rows})]
    table = _table(latest, [
        ("offer", "offer", str), ("period", "month", lambda v: v.strftime("%Y-%m")),
        ("treated_people", "treated", "{:,}".format), ("holdout_people", "held out", "{:,}".format),
        ("treated_conversion_rate", "treated conv.", _pct), ("holdout_conversion_rate", "holdout conv.", _pct),
        ("lift_absolute", "lift", _pct), ("lift_ci_low", "95% low", _pct), ("lift_ci_high", "95% high", _pct),
        ("redemption_rate", "redemption", _pct), ("margin_impact", "margin impact", _money),
        ("leaked_redemptions", "leaked", "{:,}".format), ("abuse_rate", "abuse", _pct)])
    return ("<h2>Offers: did they work?</h2><p class='note'>Treated = everyone who entered the offer's window and "
            "is not in the holdout (intent to treat); the interval is Agresti-Caffo's (marts.offer_lift).</p>"
            + _figure(lift) + table + _figure(rates))


def _audiences(con) -> str:
    import plotly.graph_objects as go

    rows = _rows(con, "select * from marts.audience_health order by destination, audience, day")
    if not rows:
        return "<h2>Audiences</h2><p class='empty'>marts.audience_health is not built yet (the daily job builds it).</p>"
    parts = ["<h2>Audiences: are they healthy?</h2>"]
    for destination in sorted({r["destination"] for r in rows}):
        figure = go.Figure()
        for audience in sorted({r["audience"] for r in rows if r["destination"] == destination}):
            mine = [r for r in rows if (r["destination"], r["audience"]) == (destination, audience)]
            figure.add_trace(go.Scatter(x=[r["day"] for r in mine], y=[r["members"] for r in mine],
                                        mode="lines", name=audience))
        figure.update_layout(title=f"{destination}: members per audience", height=380)
        parts.append(_figure(figure))
    today = [r for r in rows if r["planned_members"] is not None]
    parts.append("<p class='note'>Today, from the ledger the syncs wrote:</p>" + _table(today, [
        ("destination", "destination", str), ("audience", "audience", str), ("members", "members", "{:,}".format),
        ("match_rate", "match rate", _pct), ("unreachable_members", "no identifier", "{:,}".format),
        ("stuck_members", "stuck", "{:,}".format), ("exits_pending", "exits pending", "{:,}".format),
        ("exits_refused", "exits refused", "{:,}".format)]))
    return "".join(parts)


def _catalog(con) -> str:
    rows = _rows(con, "select * from marts.segment_definitions order by segment")
    if not rows:
        return "<h2>Segments</h2><p class='empty'>marts.segment_definitions is not built yet.</p>"
    return ("<h2>Segments and where they go</h2><p class='note'>Generated from the segment models' YAML "
            "(marts.segment_definitions).</p>" + _table(rows, [
                ("segment", "segment", str), ("description", "purpose", str), ("segment_category", "use", str),
                ("schedule", "schedule", str), ("time_window", "window", str), ("ttl", "ttl", str),
                ("customerio_segment", "Customer.io segment", str), ("cordial_list", "Cordial list", str),
                ("talon_one_audience", "Talon.One audience", str)]))


def _figure(figure) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False)


def _table(rows: list[dict], columns: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r[c]) if r.get(c) is not None else '')}</td>"
                                    for c, _, fmt in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _gap(high, low):
    return None if high is None or low is None else max(high - low, 0)


def _pct(value) -> str:
    return f"{value:.1%}"


def _money(value) -> str:
    return f"{value:,.0f}"
