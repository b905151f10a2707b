"""Self-signed certificates for the loopback sandboxes.

Clients talk real HTTPS to the sandboxes and verify the server with `verify=<cert path>`, so the certificate
names both `127.0.0.1` (IP SAN) and `localhost` (DNS SAN). An EC key takes well under a millisecond to mint, so
every sandbox gets a private temporary folder (`connector-tls-*`) of its own and hands it back with
`remove_cert` when it stops: a private key never outlives its server. Folders a caller names are the caller's
and are reused (cached per directory) and never removed. Folders still held when the interpreter exits (a
sandbox never stopped) are removed then, as a last resort.
"""

from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import shutil
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
_cache: dict[Path, CertFiles] = {}
_contexts: dict[CertFiles, ssl.SSLContext] = {}
_owned: set[Path] = set()  # temporary folders minted here and not yet removed


def loopback_cert(directory: str | Path | None = None) -> CertFiles:
    """A self-signed cert+key for 127.0.0.1/localhost; the paths of the two PEM files.

    Without `directory`: a fresh private temporary folder on every call, which the caller gives back with
    `remove_cert`. With `directory`: written once per process into that folder and reused; never removed.
    """
    if directory is None:
        target = Path(tempfile.mkdtemp(prefix="connector-tls-"))
        with _lock:
            _owned.add(target)
        return _write_cert(target)
    key_dir = Path(directory)
    with _lock:
        cached = _cache.get(key_dir)
        if cached is not None and cached.cert.exists() and cached.key.exists():
            return cached
        key_dir.mkdir(parents=True, exist_ok=True)
        files = _write_cert(key_dir)
        _cache[key_dir] = files
        return files


def remove_cert(files: CertFiles) -> None:
    """Delete a temporary folder minted by `loopback_cert()` (key first); a caller-named folder is kept."""
    folder = files.cert.parent
    with _lock:
        _contexts.pop(files, None)
        if folder not in _owned:
            return
        _owned.discard(folder)
    _remove_folder(folder)


def _remove_folder(folder: Path) -> None:
    # the key goes first and on its own, so even a folder that cannot be removed as a whole holds no key
    (folder / KEY_NAME).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


@atexit.register
def _remove_left_over_folders() -> None:
    """Last resort for sandboxes never stopped (a crashed test, an interpreter exiting mid-run)."""
    with _lock:
        left = list(_owned)
        _owned.clear()
    for folder in left:
        _remove_folder(folder)


def server_context(files: CertFiles) -> ssl.SSLContext:
    """A server-side TLS context holding the loopback certificate (cached: loading it is not free either)."""
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
