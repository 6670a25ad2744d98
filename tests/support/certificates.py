"""A CA and a server certificate made with `cryptography`, valid until a chosen moment (in the past for an expired
one), for real servers under test: the throwaway PostgreSQL cluster (TlsFiles) and a private MariaDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.sandbox.postgres import TlsFiles

# Shaped like an RDS chain (AWS names its CAs this way), so the RDS CA shows: rds-ca-rsa2048-g1.
CA_NAME = "Amazon RDS test-region-1 Subordinate CA RSA2048 G1.A.1"
SERVER_NAME = "localhost"


@dataclass(frozen=True, slots=True)
class Chain:
    """PEM bytes: the CA's certificate, and the server's certificate and key; when the server's expires."""

    ca: bytes
    certificate: bytes
    key: bytes
    not_after: datetime

    def files(self) -> TlsFiles:
        """The chain as the throwaway PostgreSQL cluster takes it."""
        return TlsFiles(ca=self.ca, certificate=self.certificate, key=self.key)

    def write(self, directory: Path) -> tuple[Path, Path, Path]:
        """ca.pem, server.pem and server.key in `directory`; their paths."""
        paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
        for path, data in zip(paths, (self.ca, self.certificate, self.key), strict=True):
            path.write_bytes(data)
        return paths


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_chain(valid_days: float) -> Chain:
    """A CA valid a year either side of now, and a certificate for localhost and 127.0.0.1 it signed, whose
    notAfter is `valid_days` from now (negative: expired) and notBefore 60 days before that."""
    now = datetime.now(UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(CA_NAME, "Amazon Web Services, Inc.")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    not_after = now + timedelta(days=valid_days)
    names = [x509.DNSName(SERVER_NAME), x509.IPAddress(IPv4Address("127.0.0.1"))]
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(SERVER_NAME, "ecs-health-agent tests"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=60))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    return Chain(ca.public_bytes(pem), server.public_bytes(pem), key, not_after)
