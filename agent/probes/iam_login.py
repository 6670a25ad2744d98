"""What can make RDS reject an IAM token that was signed without error: the name it was signed for, and the clock
that signed it; and, through RDS Proxy, which of two logins was refused. RDS answers them all like a wrong password
(PostgreSQL: 28000 "PAM authentication failed"; MySQL: 1045), so the database probe's hint names them where the agent
knows them."""

from __future__ import annotations

from agent.config.iam_host import not_an_endpoint
from agent.config.models import TargetConfig
from agent.probes.drivers.proxy import proxy_login_note
from agent.shared.clock import CLOCK


def token_host_note(target: TargetConfig) -> str:
    """A note when the token is signed for a host that is not an RDS endpoint name and nothing overrides it; ''."""
    if not target.iam_auth or target.iam_host is not None:
        return ""
    what = not_an_endpoint(target.host)
    if what is None:
        return ""
    return (
        f"the IAM token is signed for {target.host}, which is {what}: RDS accepts a token only for its own endpoint"
        f" name and port, so a login through another name is rejected like a wrong password. If {target.host}"
        " reaches RDS through a tunnel, an IP address or a CNAME, set AGENT_DB_IAM_HOST (aws_iam_auth.host) to the"
        " RDS endpoint[:port] the token must be signed for"
    )


def login_note(target: TargetConfig, code: str) -> str:
    """What the agent knows about a rejected login beyond the hint of its code, as sentences to put before it; ''.

    A `db:proxy_*` code is the proxy's own answer, whose hint already says which login failed."""
    notes = []
    if not code.startswith("db:proxy_") and (note := proxy_login_note(target)):
        notes.append(note)
    if not code.startswith("db:proxy_") and (note := token_host_note(target)):
        notes.append(note[0].upper() + note[1:] + ".")
    if target.iam_auth and CLOCK.excessive:
        notes.append(
            f"This task's {CLOCK.describe()}: a token signed by a clock more than 5 minutes off is rejected (see"
            " the credentials probe's aws:clock_skew)."
        )
    return " ".join(notes)
