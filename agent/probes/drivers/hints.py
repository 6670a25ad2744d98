"""Next steps for database failures both engines share; engine-specific ones live in pg.py and mysql.py.

Keys are failure codes, then reasons (see agent.shared.hints.pick). Fields are filled by
agent.shared.hints.render with the target's own values; {detail} is the failure's (already redacted) message.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.probes.drivers.certificate import HINTS as CERTIFICATE_HINTS
from agent.probes.drivers.proxy import HINTS as PROXY_HINTS
from agent.probes.drivers.role import HINTS as ROLE_HINTS
from agent.probes.drivers.tls import HINTS as TLS_HINTS

COMMON_HINTS: Mapping[str, str] = {
    "timeout": (
        "No TCP connection to {host}:{port} in time: check that the database's security group allows inbound "
        "TCP {port} from this task (its security group, or its subnet's CIDR), and that the subnets' network "
        "ACLs and route tables let the traffic through both ways."
    ),
    "db:timeout:connected": (
        "{host}:{port} accepted the TCP connection but did not answer ({detail}). Check that it really is a "
        "{engine} server and not another service or a stuck proxy, and whether the server is overloaded."
    ),
    "db:timeout:secret": "AWS did not answer in time for {password_reference}: see the probe that reads it.",
    "dns": (
        "{host} does not resolve from this task. Check the host name in the DSN (a typo, or a name that was "
        "removed), and that the name is in a zone this task's resolver can see: a Route 53 private hosted zone "
        "must be associated with this task's VPC, and the VPC needs DNS support enabled."
    ),
    "dns:rds": (
        "{host} does not resolve from this task. Check the host name in the DSN (a typo, or a deleted or "
        "renamed instance, cluster or proxy: `aws rds describe-db-instances` lists the endpoints). RDS endpoints "
        "resolve only inside their VPC, through the VPC's DNS resolver (DNS support and DNS hostnames enabled on "
        "the VPC); a private hosted zone must be associated with this task's VPC."
    ),
    "network": (
        "The connection to {host}:{port} failed ({detail}). Check the port in the DSN and that the database "
        "is running: a stopped, rebooting or failing-over instance refuses connections."
    ),
    "db:wrong_server": (
        "The DSN says {engine}, but {host}:{port} is not a {engine} server ({detail}). Check the DSN's scheme "
        "(postgresql:// or mysql://) and port (PostgreSQL listens on 5432 and MySQL on 3306 unless configured "
        "otherwise), and that the host is the database's endpoint, not another service's."
    ),
    "db:tls_not_negotiated": (
        "{host}:{port} does not offer TLS, but sslmode={sslmode} requires it. Enable TLS on the server (every"
        " RDS endpoint has it), or, only if plaintext is acceptable and IAM auth is not used, set "
        "sslmode=prefer (without one in the DSN, a CA bundle such as the image's makes it verify-full)."
    ),
    "db:tls_verify": (
        "The server's certificate was not trusted under sslmode={sslmode} ({detail}). Point sslrootcert "
        "(AGENT_DB_SSLROOTCERT or ?sslrootcert= in the DSN) at the CA that signed it; for RDS that is "
        "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem. With verify-full, connect with "
        "the name on the certificate (the RDS endpoint itself, not a CNAME or an IP address). The image points "
        "AGENT_DB_SSLROOTCERT at the RDS bundle: for a database another CA signed, point it at that CA."
    ),
    "tls": "TLS with {host}:{port} failed under sslmode={sslmode}: {detail}. Check the server's TLS setup.",
    "auth": (
        "The password for {user} was rejected by {host} (or {user} does not exist): compare the task "
        "definition's password ({password_source}) with the database's current password for {user}."
    ),
    "db:password_drift": (
        "Make the task definition read the password from {password_reference} (ECS `secrets` with valueFrom) "
        "instead of a fixed one ({static_password}), or set that to the current value of {password_reference}, and "
        "deploy a new task definition revision: running tasks keep the old value until they are replaced."
    ),
    "secret:rotation_in_progress": (
        "A rotation of secret {secret_id} is in progress: setSecret has set the new (AWSPENDING) password in the "
        "database, finishSecret has not yet made it AWSCURRENT. It normally finishes within minutes; if it does "
        "not, read the rotation Lambda's CloudWatch logs (`aws secretsmanager describe-secret --secret-id "
        "{secret_id} --region {secret_region}` shows the versions and their stages). /ready stays 200 (degraded):"
        " a new task would read the same AWSCURRENT, so replacing tasks would not help."
    ),
    "secret:rotation_stuck": (
        "The rotation of secret {secret_id} is stuck between setSecret and finishSecret: the database has the "
        "AWSPENDING password, AWSCURRENT the old one. See the versions and stages with `aws secretsmanager "
        "describe-secret --secret-id {secret_id} --region {secret_region}` and the rotation Lambda's logs for why,"
        " then either finish it: `aws secretsmanager update-secret-version-stage --secret-id {secret_id} --region "
        "{secret_region} --version-stage AWSCURRENT --move-to-version-id {pending_version} "
        "--remove-from-version-id {current_version}`, or cancel it (`aws secretsmanager cancel-rotate-secret "
        "--secret-id {secret_id} --region {secret_region}`) and set the database password of {user} back to the "
        "AWSCURRENT value. Replacing tasks would not help: a new task reads the same stale AWSCURRENT."
    ),
    "db:sslrootcert": ("Fix sslrootcert ({sslrootcert}): it must be a readable PEM file with the CA certificates."),
    "db:no_secret": "Fix the probe that reads {password_reference} first (its result says why): this login needs it.",
    "db:no_token": (
        "Fix the token probe first (its result says why): this login needs an IAM token for {user} at "
        "{host}:{port} in {region}."
    ),
    "db:no_user": ("Set the database user in the DSN (postgresql://USER@host/db), AGENT_DB_USER, or the secret."),
    "throttled": (
        "{host} is throttling new logins ({detail}). The limit is shared by every client of the database, so "
        "replacing this task would not help: RDS Proxy limits the rate of new client connections, and RDS allows "
        "200 new IAM-authenticated connections per second per instance (Amazon RDS User Guide, IAM database "
        "authentication, Limitations). The agent backs off its own logins; look for a fleet-wide login storm: "
        "clients that open a connection per request, or many tasks starting or reconnecting at once."
    ),
    "db:answer_too_large": (
        "{host}:{port} sent more in one answer than a {engine} login or SELECT 1 ever gets ({detail}). Check that"
        " it really is your {engine} server, not another service or a proxy, and that nothing sits in the middle:"
        " sslmode=verify-full with the server's CA (for RDS, the global bundle) proves who answers."
    ),
    "server": "{host} is up but refused the session for its own reasons: {detail}.",
    "config": "{detail}: this task's configuration cannot work as it is.",
    **TLS_HINTS,  # a password or token asked for without TLS: refused
    **ROLE_HINTS,  # writer or reader: the expected role, or a write refused by a read-only server
    **PROXY_HINTS,  # RDS Proxy's own answers (db:proxy_*)
    **CERTIFICATE_HINTS,  # the server's certificate expires soon, or has expired
}
