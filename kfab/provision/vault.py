"""ansible-vault's format, decrypted (files whose first line is `$ANSIBLE_VAULT;1.1;AES256`, and
`!vault |` strings inside YAML), so inventories and roles that keep secrets encrypted run unchanged.

The format (ansible-core's docs, "Vault payload format 1.1 - 1.2"): after the header line, hex of
"hex(salt)\\nhex(hmac)\\nhex(ciphertext)". PBKDF2-HMAC-SHA256 over the password and salt (10000 rounds)
gives 80 bytes: the AES-256 key, the HMAC-SHA256 key, and the CTR counter's start; the HMAC covers the
ciphertext; the plaintext is PKCS#7-padded to 16 bytes."""

from __future__ import annotations

import binascii
import hmac
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from kfab.provision.errors import ProvisionError

HEADER = "$ANSIBLE_VAULT"


class VaultError(ValueError):
    pass


class Vault:
    """The vault password(s) of a run (--vault-password-file); tries each in turn, as Ansible does."""

    def __init__(self, passwords: list[bytes]):
        self.passwords = passwords
        # Every string it decrypted (a !vault value, each string in an encrypted file): secrets by where they
        # came from, whatever their variable is called; a run masks them in everything it prints.
        self.revealed: set[str] = set()

    def remember(self, value) -> None:
        if isinstance(value, str):
            self.revealed.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                self.remember(v)
        elif isinstance(value, list):
            for v in value:
                self.remember(v)

    @classmethod
    def from_files(cls, files: list[str]) -> "Vault":
        passwords = []
        for name in files:
            try:
                text = Path(name).expanduser().read_bytes()
            except OSError as exc:
                raise ProvisionError(f"--vault-password-file: cannot read: {exc.strerror}", file=name) from None
            # Ansible strips the trailing newline (and only surrounding whitespace) of a password file.
            passwords.append(text.strip())
        return cls(passwords)

    def decrypt(self, envelope: str) -> str:
        for password in self.passwords:
            try:
                return decrypt(envelope, password)
            except VaultError as exc:
                last = exc
        raise last if self.passwords else VaultError("no vault password given")


def decrypt_text(envelope: str, vault: Vault | None, file: str, line: int | None) -> str:
    """Decrypted, or a ProvisionError naming where the encrypted data is."""
    if vault is None:
        raise ProvisionError("encrypted with ansible-vault: give the password with --vault-password-file",
                             file=file, line=line)
    try:
        return vault.decrypt(envelope)
    except VaultError as exc:
        raise ProvisionError(f"ansible-vault: {exc}", file=file, line=line) from None


def is_encrypted(text: str) -> bool:
    return text.lstrip().startswith(HEADER + ";")


def decrypt(envelope: str, password: bytes) -> str:
    lines = envelope.strip().splitlines()
    header = lines[0].strip().split(";")
    if len(header) < 3 or header[0] != HEADER or header[1] not in ("1.1", "1.2") or header[2] != "AES256":
        raise VaultError(f"unsupported vault header {lines[0].strip()!r} (kfab reads 1.1/1.2 AES256)")
    try:
        salt, mac, ciphertext = (binascii.unhexlify(part) for part in
                                 binascii.unhexlify("".join(hexline.strip() for hexline in lines[1:])).split(b"\n", 2))
    except (binascii.Error, ValueError):
        raise VaultError("the vault data is not valid hex: the file or string is damaged") from None
    derived = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=10000).derive(password)
    key, mac_key, counter = derived[:32], derived[32:64], derived[64:80]
    if not hmac.compare_digest(hmac.new(mac_key, ciphertext, sha256).digest(), mac):
        raise VaultError("Decryption failed (no vault secrets were found that could decrypt)")
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()
