"""Build-time check of a CA bundle fetched into the image (the Dockerfile's rds-ca stage).

Usage: python check_ca_bundle.py BUNDLE [SHA256]

With SHA256 (the --build-arg RDS_CA_BUNDLE_SHA256 pin), the file's digest must equal it; without, the digest is
printed so it can be pinned. Either way Python's ssl must load the file as CA certificates (an HTML error page or an
empty file is refused), and the file is made read-only for everyone (ADD leaves a fetched file 0600, root's only,
and the agent runs as an unprivileged user). Exit 0, or 1 with the reason on stderr. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import sys


def check(path: str, pin: str) -> str:
    """The line to print when the bundle is good; raise ValueError saying what is wrong otherwise."""
    with open(path, "rb") as bundle:
        digest = hashlib.sha256(bundle.read()).hexdigest()
    if pin and pin.strip().lower().removeprefix("sha256:") != digest:
        raise ValueError(
            f"{path}: SHA-256 is {digest}, not the pinned {pin.strip()}: the file changed upstream or was substituted"
        )
    try:
        count = len(ssl.create_default_context(cafile=path).get_ca_certs())
    except ssl.SSLError as exc:
        raise ValueError(f"{path}: not a PEM bundle of CA certificates ({exc.reason or exc})") from None
    if count == 0:
        raise ValueError(f"{path}: holds no CA certificate")
    os.chmod(path, 0o444)
    pinned = "matches the pin" if pin else "not pinned: pin it with --build-arg RDS_CA_BUNDLE_SHA256=" + digest
    return f"{path}: {count} CA certificates, SHA-256 {digest} ({pinned})"


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 1
    try:
        print(check(argv[1], argv[2] if len(argv) == 3 else ""))
    except (OSError, ValueError) as exc:
        print(f"CA bundle check failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
