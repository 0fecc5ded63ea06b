"""An aiosmtpd server for Kairos's tests (see ../smtp.rs), storing each message it accepts in a
maildir.

    python3 aiosmtpd_server.py --port PORT --dir DIR [--mode plain|starttls|tls]
                               [--user USER --password PASSWORD]

`plain` speaks SMTP without TLS or authentication, as a local relay would. `starttls` requires
STARTTLS before anything but EHLO/NOOP/QUIT, and AUTH (PLAIN or LOGIN, only over TLS) before
MAIL; `tls` is TLS from the first byte (SMTPS, RFC 8314) with AUTH required. For the TLS modes
a certificate authority and a server certificate for 127.0.0.1 and localhost, issued by it, are
generated into DIR (`ca.pem`, `server.pem`, `server.key`, with Python's `cryptography`). When
the server listens, DIR/ready is written.
"""

import argparse
import datetime
import ipaddress
import os
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


def issue_certificates(directory):
    """A CA, and a server certificate it issued for 127.0.0.1 and localhost (valid one day)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kairos test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(os.path.join(directory, "server.pem"), "wb") as f:
        f.write(server.public_bytes(pem))
    with open(os.path.join(directory, "server.key"), "wb") as f:
        f.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(os.path.join(directory, "server.pem"), os.path.join(directory, "server.key"))
    return context


def authenticator(user, password):
    """Accepts exactly one user name and password (PLAIN or LOGIN)."""

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    # As `python3 -m aiosmtpd` does by default: no SMTPUTF8, the default size limit.
    options = {"hostname": "127.0.0.1", "port": args.port, "enable_SMTPUTF8": False}
    if args.mode != "plain":
        context = issue_certificates(args.dir)
        options.update(auth_required=True, authenticator=authenticator(args.user, args.password))
        if args.mode == "starttls":
            options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
        else:
            # The whole connection is TLS, which aiosmtpd's auth_require_tls (STARTTLS only)
            # cannot see: without this it would refuse AUTH on an encrypted connection.
            options.update(ssl_context=context, auth_require_tls=False)
    controller = Controller(Mailbox(os.path.join(args.dir, "maildir")), **options)
    controller.start()
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write("ready\n")
    threading.Event().wait()


if __name__ == "__main__":
    main()
