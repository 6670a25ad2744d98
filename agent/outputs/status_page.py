"""The status page at `/`: one self-contained HTML page a person can read at a glance.

Rendered from the snapshot only (no I/O). Everything shown is escaped: messages come from database drivers and
AWS, names from configuration. No script and no outside asset: a meta refresh keeps it current, so it works
offline and under a Content-Security-Policy that allows nothing but inline style.
"""

from __future__ import annotations

from html import escape

from agent.outputs.logs import iso_utc
from agent.runtime.readiness import Status
from agent.runtime.state import AwsIdentity, ProbeView, Snapshot
from agent.shared.clock import CLOCK_SKEW_LIMIT_SECONDS
from agent.shared.reasons import NOT_RUN_CODE

REFRESH_SECONDS = 5
PAGE_HEADERS = {
    # Defence in depth: even a value that slipped past escaping could neither run script nor fetch anything.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Status word, colour, and what it means for the load balancer (text too: never colour alone).
_STATUS = {
    Status.READY: ("READY", "#1a7f37", "every check passes"),
    Status.DEGRADED: ("DEGRADED", "#9a6700", "a shared dependency is failing; the task stays in service"),
    Status.NOT_READY: ("NOT READY", "#cf222e", "out of service until the failing check passes"),
    Status.STARTING: ("STARTING", "#0969da", "waiting for every check to pass once"),
    Status.DRAINING: ("DRAINING", "#57606a", "shutting down"),
}
_STYLE = """
body{font:15px/1.4 "DejaVu Sans",system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:12px 16px}
.banner{color:#fff;border-radius:8px;padding:12px 20px;margin-bottom:14px}
.banner h1{font-size:40px;margin:0;letter-spacing:1px}.banner p{margin:4px 0 0;font-size:16px}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d0d7de}
th,td{text-align:left;vertical-align:top;padding:7px 8px;border-bottom:1px solid #d0d7de}
th{background:#eaeef2;font-size:13px}td{font-size:14px;white-space:nowrap}
td.detail{white-space:normal;overflow-wrap:anywhere;width:45%}
tr.fail td{background:#ffebe9}tr.pending td{background:#f6f8fa}
.mark{font-weight:bold;white-space:nowrap}.mark.pass{color:#1a7f37}.mark.fail{color:#cf222e}
.mark.pending,.mark.not-run{color:#57606a}
.hint{color:#57606a;margin-top:4px}.hint:before{content:"Next step: ";font-weight:bold}
time,.muted{color:#57606a;font-size:12px}code{font-size:13px}.ago{font-size:13px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;margin-top:16px}
h2{font-size:17px;margin:4px 0 8px}dl{display:grid;grid-template-columns:190px 1fr;margin:0;gap:4px}
dt{font-weight:bold}dd{margin:0;overflow-wrap:anywhere}h3{font-size:15px;margin:8px 0 4px}
li.warning{color:#9a6700;font-weight:bold}footer{margin-top:14px;color:#57606a;font-size:13px}
"""


def render_status_page(snapshot: Snapshot, full: bool, now: float) -> str:
    """The whole page; `full=False` (status_detail=summary) leaves out messages, hints and the AWS identity."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        f"<title>{escape(_STATUS[snapshot.status][0])} - ecs-health-agent</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        _banner(snapshot),
        _table(snapshot.probes, full, now),
        _databases(snapshot.probes, now),
        _identity(snapshot.aws, now, snapshot.clock_skew_seconds) if full else "",
        _footer(snapshot, now),
        "</main></body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _banner(snapshot: Snapshot) -> str:
    word, colour, meaning = _STATUS[snapshot.status]
    http = 200 if snapshot.http_ok else 503
    failing = ", ".join(f"{f.probe} ({f.target}): {f.reason}" for f in snapshot.failing)
    failing_line = f'<p class="failing">Failing: {escape(failing)}</p>' if failing else ""
    pending = pending_failures(snapshot)
    pending_line = ""
    if pending and snapshot.status is Status.READY:  # "every check passes" would be false above a FAIL row
        meaning = f"ready; {pending}"
    elif pending:
        pending_line = f'<p class="pending">Not counted yet: {escape(pending)}</p>'
    return (
        f'<div class="banner" id="status" data-status="{escape(snapshot.status.value)}" style="background:{colour}">'
        f"<h1>{escape(word)}</h1><p>{escape(meaning)} &middot; /ready answers {http}</p>{failing_line}{pending_line}"
        "</div>"
    )


def pending_failures(snapshot: Snapshot) -> str:
    """Probes whose last run failed but that do not count yet, e.g. "db (writer) failing (1 of 3 before it counts)".

    Skipped runs (`not_run`) are left out: the probe they depend on is the one failing.
    """
    threshold = snapshot.failure_threshold
    return ", ".join(
        f"{view.probe} ({view.target}) failing ({view.consecutive_failures} of {threshold} before it counts)"
        for view in snapshot.probes
        if view.last is not None and not view.last.ok and not view.failing and view.last.code != NOT_RUN_CODE
    )


def _table(probes: tuple[ProbeView, ...], full: bool, now: float) -> str:
    detail = "<th>Message and next step</th>" if full else ""
    head = (
        f"<tr><th>Probe</th><th>Target</th><th>Result</th><th>Reason</th><th>Code</th>{detail}"
        "<th>Last success</th><th>Failures in a row</th><th>Last run</th></tr>"
    )
    rows = "\n".join(_row(view, full, now) for view in probes)
    return f'<table id="probes"><thead>{head}</thead><tbody>\n{rows}\n</tbody></table>'


def _row(view: ProbeView, full: bool, now: float) -> str:
    last = view.last
    result, mark = _result(view)
    cells = [
        f'<td class="probe">{escape(view.probe)}</td>',
        f'<td class="target">{escape(view.target)}</td>',
        f'<td class="result"><span class="mark {result}">{mark}</span>{_tls_note(view)}</td>',
        f'<td class="reason">{escape(last.reason.value) if last and last.reason else ""}</td>',
        f'<td class="code"><code>{escape(last.code) if last else ""}</code></td>',
    ]
    if full:
        message = f'<div class="message">{escape(last.message)}</div>' if last and last.message else ""
        hint = f'<div class="hint">{escape(last.hint)}</div>' if last and last.hint else ""
        cells.append(f'<td class="detail">{message}{hint}</td>')
    cells += [
        f'<td class="last-success">{_moment(view.last_success, now, "never")}</td>',
        f'<td class="failures">{view.consecutive_failures}</td>',
        f'<td class="last-run">{_last_run(view, now)}</td>',
    ]
    attributes = f'data-probe="{escape(view.probe)}" data-target="{escape(view.target)}" data-result="{result}"'
    return f'<tr class="{result}" {attributes}>{"".join(cells)}</tr>'


def _result(view: ProbeView) -> tuple[str, str]:
    """A class for the row and the mark shown: a symbol and a word, so it reads without colour."""
    if view.last is None:
        return "pending", "&hellip; NOT RUN YET"
    if view.last.ok:
        return "pass", "&#10003; PASS"
    if view.last.code == NOT_RUN_CODE:
        return "fail", "&#10007; FAIL (skipped)"
    return "fail", "&#10007; FAIL"


def _tls_note(view: ProbeView) -> str:
    """Under the mark of a login that was encrypted without checking the server's certificate, a word saying so."""
    last = view.last
    if last is None or not last.ok or last.details.get("tls_verified") != "no":
        return ""
    return '<br><span class="muted tls-unverified">TLS: certificate not verified</span>'


def _last_run(view: ProbeView, now: float) -> str:
    if view.last is None:
        return ""
    took = "skipped" if view.last.code == NOT_RUN_CODE else f"{view.last.duration_ms:.1f} ms"
    return f'{took}<br><span class="muted">{_relative(view.last.finished_at - now)}</span>'


def _databases(probes: tuple[ProbeView, ...], now: float) -> str:
    """What each database login read (agent.probes.db_facts), and the warnings to act on before it breaks."""
    blocks = [_database(view, now) for view in probes if not view.facts.empty]
    return f'<section id="databases"><h2>Databases</h2>{"".join(blocks)}</section>' if blocks else ""


def _database(view: ProbeView, now: float) -> str:
    facts = view.facts
    certificate = facts.certificate_not_after
    items = [
        ("Address reached", "address", facts.resolved_address),
        ("Read-only", "read-only", None if facts.read_only is None else ("yes" if facts.read_only else "no")),
        ("Certificate expires", "certificate", certificate and iso_utc(certificate.timestamp(), "seconds")),
        ("Certificate issuer", "issuer", facts.certificate_issuer),
        ("Password expires", "password", facts.password_expiry),
        ("Connections", "connections", _headroom(facts.connections, facts.max_connections)),
    ]
    rows = "".join(f'<dt>{label}</dt><dd class="{name}">{escape(value)}</dd>' for label, name, value in items if value)
    warnings = "".join(f'<li class="warning">{escape(text)}</li>' for text in facts.warnings(now))
    return f'<h3 data-target="{escape(view.target)}">{escape(view.target)}</h3><dl>{rows}</dl>' + (
        f"<ul>{warnings}</ul>" if warnings else ""
    )


def _headroom(connections: int | None, maximum: int | None) -> str | None:
    if connections is None:
        return None
    return f"{connections} of {maximum}" if maximum else str(connections)


def _identity(aws: AwsIdentity | None, now: float, skew: float | None) -> str:
    if aws is None:
        body = '<p class="muted">Not known: no AWS credentials in use, or the credentials check has not passed.</p>'
        return f'<section id="aws"><h2>AWS identity</h2>{body}</section>'
    expiry = _moment(aws.expires_at.timestamp(), now, "") if aws.expires_at else "never (static keys)"
    if aws.expires_at and aws.expires_at.timestamp() <= now:
        expiry = f"<strong>EXPIRED</strong> {expiry}"
    items = [
        ("ARN", "arn", escape(aws.arn or "unknown")),
        ("Account", "account", escape(aws.account or "unknown")),
        ("Credentials from", "provider", escape(aws.provider or "unknown")),
        ("Credentials expire", "expiry", expiry),
        ("Clock skew", "clock-skew", _skew(skew)),
    ]
    rows = "".join(f'<dt>{label}</dt><dd class="{name}">{value}</dd>' for label, name, value in items)
    return f'<section id="aws"><h2>AWS identity</h2><dl>{rows}</dl></section>'


def _skew(skew: float | None) -> str:
    """AWS's clock against this task's (agent.aws.clock): SigV4 refuses every signed request beyond 300 s."""
    if skew is None:
        return "not known yet (no AWS answer)"
    side = "ahead of" if skew > 0 else "behind"
    text = f"AWS is {abs(skew):.0f} s {side} this task's clock"
    beyond = abs(skew) > CLOCK_SKEW_LIMIT_SECONDS
    return f"<strong>{text}</strong>: past 300 s AWS refuses every signed request" if beyond else text


def _footer(snapshot: Snapshot, now: float) -> str:
    return (
        f'<footer>ecs-health-agent <span class="version">{escape(snapshot.version)}</span> &middot; '
        f"rendered {iso_utc(now, 'seconds')} &middot; refreshes every {REFRESH_SECONDS} s &middot; "
        'JSON: <a href="/status">/status</a> <a href="/ready">/ready</a> <a href="/health">/health</a> '
        '&middot; <a href="/metrics">/metrics</a></footer>'
    )


def _moment(moment: float | None, now: float, absent: str) -> str:
    """Relative ("12 s ago", "in 5 h 59 min") and the ISO time underneath."""
    if moment is None:
        return escape(absent)
    iso = iso_utc(moment, "seconds")
    return f'<span class="ago">{_relative(moment - now)}</span><br><time datetime="{iso}">{iso}</time>'


def _relative(delta: float) -> str:
    seconds = abs(delta)
    if seconds < 1:
        return "just now"
    if seconds < 120:
        amount = f"{seconds:.0f} s"
    elif seconds < 7200:
        amount = f"{seconds // 60:.0f} min"
    elif seconds < 172800:
        amount = f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"
    else:
        amount = f"{seconds // 86400:.0f} days"
    return f"in {amount}" if delta > 0 else f"{amount} ago"
