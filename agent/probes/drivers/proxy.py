"""What RDS Proxy's own answers mean, for both engines: the hints of the `db:proxy_*` codes that pg.py's and
mysql.py's tables give its messages (source: RDS User Guide, "Troubleshooting for RDS Proxy",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.troubleshooting.html).

Through a proxy there are two logins: the task's, to the proxy (a password the proxy compares with its Secrets
Manager secret for that user, or an IAM token the proxy checks), and the proxy's own, to the database (with that
secret, read by the proxy's IAM role; or, with end-to-end IAM auth, a token for the proxy's role). {host} here is the
proxy endpoint (agent.config.dsn.is_proxy_host).
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.dsn import is_proxy_host
from agent.config.models import TargetConfig

_LOOK = (
    "`aws rds describe-db-proxies` shows its Auth (SecretArn, IAMAuth, per user) and RoleArn; `aws rds"
    " describe-db-proxy-targets --db-proxy-name NAME` shows whether the proxy's own login to the database works"
    " (TargetHealth AUTH_FAILURE: it does not)"
)

HINTS: Mapping[str, str] = {
    "db:proxy_requires_tls": (
        "{host} is an RDS Proxy that takes only TLS connections (its Require Transport Layer Security setting, and"
        " always for IAM logins), but this login was not encrypted (sslmode={sslmode}): set sslmode=require, or"
        " verify-full with the RDS CA bundle in AGENT_DB_SSLROOTCERT."
    ),
    "db:proxy_iam_auth": (
        "RDS Proxy {host} rejected the IAM token for {user}; the proxy checks it, not the database. The token must be"
        " signed for the proxy endpoint and port ({host}:{port}; AGENT_DB_IAM_HOST when the DSN reaches it by"
        " another name), the task role needs rds-db:connect on arn:aws:rds-db:{region}:<account-id>:dbuser:"
        "<prx-id>/{user} (the proxy's resource id, prx-..., the end of its ARN; not the database's), and the"
        " proxy's auth settings for {user} need IAMAuth REQUIRED. " + _LOOK + "."
    ),
    "db:proxy_no_credentials": (
        "RDS Proxy {host} has no credentials for {user}: no Secrets Manager secret in its auth settings has username"
        " {user}, or the proxy's IAM role cannot read it (secretsmanager:GetSecretValue on the secret, kms:Decrypt"
        " on its key). Add a secret for {user} to the proxy (aws rds modify-db-proxy --auth ...), or log in as a"
        " user it has one for. " + _LOOK + "."
    ),
    "db:proxy_password": (
        "RDS Proxy {host} compared the password for {user} ({password_source}) with its own Secrets Manager secret"
        " for {user}, and they differ: the task and the proxy must read the same secret (after a rotation the proxy"
        " takes the new AWSCURRENT within minutes). " + _LOOK + "."
    ),
    "db:proxy_connections": (
        "RDS Proxy {host} is at its limit of client connections ({detail}). Every client of the proxy shares it, so"
        " replacing this task would not help: look for clients that leak connections or pool too many (the proxy's"
        " ClientConnections metric in CloudWatch)."
    ),
    "db:proxy_borrow_timeout": (
        "RDS Proxy {host} got no connection to the database within its ConnectionBorrowTimeout: the database is at"
        " max_connections (or the proxy at MaxConnectionsPercent), unreachable from the proxy, or the proxy's own"
        " login fails. " + _LOOK + "."
    ),
}


def proxy_login_note(target: TargetConfig) -> str:
    """For a login rejected at a proxy endpoint with a generic answer (MySQL 1045): which login was refused; ''."""
    if not is_proxy_host(target.host):
        return ""
    if target.iam_auth:
        return (
            f"{target.host} is an RDS Proxy: it checks the IAM token itself (rds-db:connect on the proxy's prx-..."
            " resource id, IAMAuth REQUIRED in its auth settings) and logs in to the database with its own secret,"
            " so the database user needs no IAM plugin or rds_iam."
        )
    return (
        f"{target.host} is an RDS Proxy: it compares the password with its own Secrets Manager secret for the user,"
        " then logs in to the database with that secret."
    )
