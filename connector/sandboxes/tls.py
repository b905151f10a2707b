"""A self-signed certificate for the loopback sandboxes, minted once per process.

Clients talk real HTTPS to the sandboxes and verify the server with `verify=<cert path>`, so the certificate
names both `127.0.0.1` (IP SAN) and `localhost` (DNS SAN). Minting an RSA key costs tens of milliseconds; the
files are therefore cached per process and per directory, which keeps a function-scoped fixture cheap.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_NAME = "loopback-cert.pem"
KEY_NAME = "loopback-key.pem"


@dataclass(frozen=True)
class CertFiles:
    """Paths of the PEM certificate (also the CA bundle clients verify against) and its private key."""

    cert: Path
    key: Path


_lock = threading.Lock()
_cache: dict[Path | None, CertFiles] = {}
_contexts: dict[CertFiles, ssl.SSLContext] = {}


def loopback_cert(directory: str | Path | None = None) -> CertFiles:
    """Write (once per process) a self-signed cert+key for 127.0.0.1/localhost and return their paths.

    Without `directory` the files go to a private temporary directory that lives as long as the process.
    """
    key_dir = Path(directory) if directory is not None else None
    with _lock:
        cached = _cache.get(key_dir)
        if cached is not None and cached.cert.exists() and cached.key.exists():
            return cached
        target = key_dir if key_dir is not None else Path(tempfile.mkdtemp(prefix="connector-tls-"))
        target.mkdir(parents=True, exist_ok=True)
        files = _write_cert(target)
        _cache[key_dir] = files
        return files


def server_context(files: CertFiles | None = None) -> ssl.SSLContext:
    """A server-side TLS context holding the loopback certificate (cached: loading it is not free either)."""
    files = files or loopback_cert()
    with _lock:
        ctx = _contexts.get(files)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(files.cert), str(files.key))
            _contexts[files] = ctx
        return ctx


def _write_cert(directory: Path) -> CertFiles:
    # EC P-256 rather than RSA: generation takes well under a millisecond.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connector loopback sandbox")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        # The certificate is its own trust anchor, so it must be allowed to act as a CA; the key identifiers
        # keep strict X.509 verification (VERIFY_X509_STRICT) happy.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / CERT_NAME
    key_path = directory / KEY_NAME
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return CertFiles(cert=cert_path, key=key_path)
