"""The server's TLS certificate, read on the login made anyway: notAfter, subject and issuer, in every sslmode.

A login's TLS transport holds the certificate the server sent. Where the context verified it (verify-ca,
verify-full, and require with a root certificate: what the image's RDS bundle makes the default), the ssl module has
parsed it already (`ssl.SSLObject.getpeercert()`), and that dict is read: no import, no cost. Under CERT_NONE
(prefer, and require without a root certificate) the dict is empty, so the DER form
(`getpeercert(binary_form=True)`) is parsed by the same parser through CPython's `_ssl._test_decode_cert`; only
where that is missing, by `cryptography`, imported on the first such certificate and in a thread (measured on the
agent: ~55 ms and ~10 MB of RSS, 7 of them the mapped library).

A certificate that fails verification because it has expired never reaches a transport: verified contexts use
`KeepsServerCertificate`, which keeps the certificate on the verification error, so the failure can name the date.

Source of the RDS facts: Amazon RDS User Guide, "Rotating your SSL/TLS certificate"
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL-certificate-rotation.html) and "Using
SSL/TLS to encrypt a connection to a DB instance or cluster" (certificate authorities, the trust bundles).
"""

from __future__ import annotations

import _ssl
import asyncio
import os
import re
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.probes.db_facts import (
    CERTIFICATE_ISSUER,
    CERTIFICATE_NOT_AFTER,
    CERTIFICATE_SUBJECT,
    CERTIFICATE_WARNING_DAYS,
    DbFacts,
    iso,
)
from agent.shared.reasons import ProbeFailure, Reason
from agent.shared.redact import one_line

EXPIRING = "db:certificate_expiring"  # hint key of the warning (a pass): expires within 30 days, or has expired
EXPIRED = "db:tls_expired"  # failure code: verify-ca / verify-full refused a certificate past its notAfter
NAME_CHARACTERS = 200  # a subject or issuer is cut here: one readable line, one bounded detail
_HAS_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED, the SSLCertVerificationError's verify_code ("certificate has expired")
_KEPT = "server_certificate_der"  # the attribute KeepsServerCertificate sets on the verification error
# An RDS server certificate's issuer names its CA: "Amazon RDS eu-west-1 Subordinate CA RSA2048 G1.A.1", or for the
# CA that expired on 2024-08-22 "Amazon RDS eu-west-1 2019 CA". The CA identifiers are the RDS API's.
_RDS_G1 = re.compile(r"Amazon RDS\b.*?\b(RSA2048|RSA4096|ECC384) G1\b")
_RDS_2019 = re.compile(r"Amazon RDS\b.*?\b2019 CA\b")


# getpeercert()'s attribute names, as RFC 4514 writes them (RFC 4514 section 3; cryptography's rfc4514_string agrees).
_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """The certificate a login's TLS handshake received: DER always, the ssl module's parsed fields when verified."""

    der: bytes | None
    verified: Mapping[str, Any] = field(default_factory=dict)  # getpeercert(): empty unless the chain was verified


def server_certificate(ssl_object: Any) -> ServerCertificate | None:
    """What a transport's `ssl_object` holds of the server's certificate; None without TLS."""
    if ssl_object is None:
        return None
    return ServerCertificate(ssl_object.getpeercert(binary_form=True), ssl_object.getpeercert() or {})


class KeepsServerCertificate(ssl.SSLObject):
    """An SSLObject (asyncio's TLS for both drivers) that keeps the server's certificate on a verification error.

    Set as `SSLContext.sslobject_class` (documented: "can be overridden ... to return a custom subclass of
    SSLObject"). The unverified chain comes from `SSLObject.get_unverified_chain()` (public from Python 3.13), or
    before that from the private `_sslobj` (listed in agent/shared/private_api.py).
    """

    def do_handshake(self) -> None:
        """The handshake; a verification error leaves with the server's certificate (DER) on it."""
        try:
            super().do_handshake()
        except ssl.SSLCertVerificationError as exc:
            setattr(exc, _KEPT, self._leaf())
            raise

    def _leaf(self) -> bytes | None:
        try:
            if sys.version_info >= (3, 13):
                chain: list[Any] = self.get_unverified_chain()
                return bytes(chain[0]) if chain else None
            chain = self._sslobj.get_unverified_chain() or []  # type: ignore[attr-defined]
            return ssl.PEM_cert_to_DER_cert(chain[0].public_bytes()) if chain else None
        except (AttributeError, ValueError, ssl.SSLError):  # a Python without it: the failure names no date
            return None


async def certificate_details(certificate: ServerCertificate | bytes | None) -> dict[str, str]:
    """The details keys of agent.probes.db_facts (`certificate_not_after` in ISO 8601 UTC, `certificate_subject`
    and `certificate_issuer` as RFC 4514 strings of at most NAME_CHARACTERS) for a certificate: from the ssl module's
    fields when it verified the certificate, else parsed from DER; `{}` for none, or for one that cannot be parsed
    (no other fact of the login is lost for it)."""
    if isinstance(certificate, ServerCertificate):
        if (fields := _verified_details(certificate.verified)) is not None:
            return fields
        certificate = certificate.der
    return await _parsed_details(certificate) if certificate else {}


def _verified_details(fields: Mapping[str, Any]) -> dict[str, str] | None:
    """The details from getpeercert()'s dict (notAfter as "Dec 10 14:34:19 2026 GMT"; subject and issuer as
    tuples of RDNs of (name, value) pairs, most significant first); None when it is empty (not verified)."""
    not_after = fields.get("notAfter")
    if not not_after:
        return None
    try:
        moment = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    except ValueError:
        return None
    return {
        CERTIFICATE_NOT_AFTER: iso(moment),
        CERTIFICATE_SUBJECT: one_line(_rfc4514(fields.get("subject", ())), limit=NAME_CHARACTERS),
        CERTIFICATE_ISSUER: one_line(_rfc4514(fields.get("issuer", ())), limit=NAME_CHARACTERS),
    }


def _rfc4514(name: Any) -> str:
    """A getpeercert() name as an RFC 4514 string: the RDNs last first, `+` within one, values escaped."""
    rdns = ["+".join(f"{_SHORT_NAMES.get(key, key)}={_escape(str(value))}" for key, value in rdn) for rdn in name]
    return ",".join(reversed(rdns))


def _escape(value: str) -> str:
    """RFC 4514 section 2.4: a backslash before , + " \\ < > ; anywhere, a leading # or space, a trailing space."""
    escaped = re.sub(r'([,+"\\<>;])', r"\\\1", value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


async def _parsed_details(der: bytes) -> dict[str, str]:
    """An unverified certificate's details: the ssl module's own parse where it can give one (no import), else
    `cryptography`'s."""
    fields = await asyncio.to_thread(_decode_with_ssl, der)
    if fields is not None:
        return _verified_details(fields) or {}
    return await _parsed_with_cryptography(der)


def _decode_with_ssl(der: bytes) -> Mapping[str, Any] | None:
    """CPython's own certificate parser (OpenSSL's), the dict getpeercert() gives for a verified certificate, for
    one that was not verified: `_ssl._test_decode_cert` reads a PEM file, here an in-memory one (memfd_create:
    nothing is written to a disk, which a read-only root filesystem would refuse). `cryptography` would cost ~10 MB
    of RSS for the same three fields (measured: the bench's PostgreSQL agent, 55.5 -> 64.0 MiB). None where the
    function or memfd_create is missing, or the certificate does not parse (listed in agent/shared/private_api.py)."""
    decode = getattr(_ssl, "_test_decode_cert", None)
    create = getattr(os, "memfd_create", None)
    if decode is None or create is None:
        return None
    try:
        fd = create("eha-server-certificate", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        os.write(fd, ssl.DER_cert_to_PEM_cert(der).encode("ascii"))
        fields: Mapping[str, Any] = decode(f"/proc/self/fd/{fd}")
        return fields
    except (OSError, ValueError, ssl.SSLError):
        return None
    finally:
        os.close(fd)


async def _parsed_with_cryptography(der: bytes) -> dict[str, str]:
    x509 = await _x509()
    try:
        cert = x509.load_der_x509_certificate(der)
        not_after: datetime = cert.not_valid_after_utc
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    except ValueError:
        return {}
    return {
        CERTIFICATE_NOT_AFTER: iso(not_after),
        CERTIFICATE_SUBJECT: one_line(subject, limit=NAME_CHARACTERS),
        CERTIFICATE_ISSUER: one_line(issuer, limit=NAME_CHARACTERS),
    }


def rds_ca(issuer: str | None) -> str | None:
    """The RDS CA identifier (`rds-ca-rsa2048-g1`, `rds-ca-2019`, ...) an issuer string names, or None."""
    if not issuer:
        return None
    if (g1 := _RDS_G1.search(issuer)) is not None:
        return f"rds-ca-{g1.group(1).lower()}-g1"
    return "rds-ca-2019" if _RDS_2019.search(issuer) else None


def signed_by(details: Mapping[str, str]) -> str:
    """', issued by <issuer> (RDS CA <id>)' for a message, or '' when the details hold no issuer."""
    issuer = details.get(CERTIFICATE_ISSUER)
    if not issuer:
        return ""
    ca = rds_ca(issuer)
    return f", issued by {issuer}" + (f" (RDS CA {ca})" if ca else "")


def expiring(details: Mapping[str, str], now: float) -> str | None:
    """What the certificate warning of agent.probes.db_facts says, with the issuer, when it applies (within
    CERTIFICATE_WARNING_DAYS of notAfter, or past it; `now` is Unix seconds); None otherwise."""
    not_after = DbFacts.from_details(details).certificate_not_after
    if not_after is None:
        return None
    left = not_after.timestamp() - now
    if left > CERTIFICATE_WARNING_DAYS * 86400:
        return None
    when = f"expired on {iso(not_after)}" if left <= 0 else f"expires in {left / 86400:.1f} days, on {iso(not_after)}"
    return f"it {when}{signed_by(details)}"


async def expired_failure(exc: BaseException, sslmode: str) -> ProbeFailure | None:
    """The `db:tls_expired` failure for a login refused because the server's certificate has expired (the
    verification error, raised directly or as the `__cause__` of a driver's error), naming its notAfter and
    issuer and carrying them as details; None for any other error."""
    error = _verification_error(exc)
    if error is None or error.verify_code != _HAS_EXPIRED:
        return None
    details = await certificate_details(getattr(error, _KEPT, None))
    when = details.get(CERTIFICATE_NOT_AFTER)
    said = f"on {when} (notAfter)" if when else "(its notAfter was not readable)"
    message = (
        f"the server's TLS certificate expired {said}{signed_by(details)}; sslmode={sslmode} refused it before any"
        f" password or token was sent ({one_line(str(error))})"
    )
    return ProbeFailure(Reason.TLS, EXPIRED, message, details=details)


def _verification_error(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    seen = 0
    while exc is not None and seen < 5:  # asyncpg raises it as is; aiomysql as the cause of its 2003
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


async def _x509() -> Any:
    """cryptography.x509, imported in a thread the first time (reading its files must not stall the loop)."""
    module = sys.modules.get("cryptography.x509")
    if module is None:
        import importlib

        module = await asyncio.to_thread(importlib.import_module, "cryptography.x509")
    return module


_ROTATION = (
    " On RDS the certificate comes from the instance's certificate authority: rds-ca-2019 expired on 2024-08-22; the"
    " current CAs are rds-ca-rsa2048-g1, rds-ca-rsa4096-g1 and rds-ca-ecc384-g1. Rotate each instance (each"
    " instance of an Aurora cluster): `aws rds modify-db-instance --db-instance-identifier <instance>"
    " --ca-certificate-identifier rds-ca-rsa2048-g1 --apply-immediately` (some engines restart for it: AWS, Rotating"
    " your SSL/TLS certificate), and point sslrootcert (AGENT_DB_SSLROOTCERT) at a trust bundle that has the new"
    " CA: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem, or the region's"
    " https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem. A server that is not RDS needs a"
    " renewed certificate from whoever issues its certificates."
)
HINTS: Mapping[str, str] = {
    EXPIRING: "The TLS certificate of {host}:{port} needs renewing ({detail})." + _ROTATION,
    EXPIRED: (
        "{host}:{port} presented an expired TLS certificate: every login that verifies it (sslmode={sslmode}) fails"
        " until it is replaced." + _ROTATION
    ),
}
