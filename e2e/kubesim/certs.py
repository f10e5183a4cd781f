"""Certificates for kubesim: a cluster CA, the serving certificate, client certificates, and the
service-account signing key. Everything is generated at start-up and written to --cert-dir."""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name="kubesim-ca", days=365):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca_cert, ca_key, common_name, organizations=(), dns_names=(), ips=(), server=False,
          client=False, days=365, not_before=None, not_after=None):
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before or _now() - datetime.timedelta(minutes=5))
         .not_valid_after(not_after or _now() + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if usages:
        b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans = [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return cert, key


class ClusterPKI:
    """The CA, serving pair and service-account key, written as PEM files into a directory."""

    def __init__(self, cert_dir, hosts=("localhost",), ips=("127.0.0.1",)):
        os.makedirs(cert_dir, exist_ok=True)
        self.dir = cert_dir
        self.ca_cert, self.ca_key = make_ca()
        self.serving_cert, self.serving_key = issue(
            self.ca_cert, self.ca_key, "kubesim", dns_names=list(hosts) + [
                "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local"], ips=list(ips), server=True)
        self.sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.write("ca.crt", pem_cert(self.ca_cert))
        self.write("ca.key", pem_key(self.ca_key))
        self.write("apiserver.crt", pem_cert(self.serving_cert))
        self.write("apiserver.key", pem_key(self.serving_key))
        self.write("sa.key", pem_key(self.sa_key))
        self.write("sa.pub", self.sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, 0o600)

    def ca_pem(self):
        return pem_cert(self.ca_cert)

    def client_pair(self, user, groups=()):
        """A client certificate and key (PEM bytes) that authenticate as user in groups."""
        cert, key = issue(self.ca_cert, self.ca_key, user, organizations=groups, client=True)
        return pem_cert(cert), pem_key(key)
