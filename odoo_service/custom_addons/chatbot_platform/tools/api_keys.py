"""API key format: ``cbp_pk_``/``cbp_sk_`` + 32 random base62 chars + 6-char base62 CRC32 checksum.

Only ``sha256(key)`` is ever stored; the first 12 characters (``prefix``) identify a key in lists.
"""

import hashlib
import hmac
import secrets
import string
import zlib

BASE62_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
KIND_PREFIXES = {"publishable": "cbp_pk_", "secret": "cbp_sk_"}
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
DISPLAY_PREFIX_LENGTH = 12
KEY_LENGTH = len("cbp_pk_") + RANDOM_LENGTH + CHECKSUM_LENGTH


def base62(number):
    if number < 0:
        raise ValueError("base62 encodes non-negative integers only")
    digits = []
    while True:
        number, remainder = divmod(number, 62)
        digits.append(BASE62_ALPHABET[remainder])
        if not number:
            return "".join(reversed(digits))


def checksum(prefix, random_part):
    return base62(zlib.crc32((prefix + random_part).encode())).rjust(CHECKSUM_LENGTH, "0")


def assemble(kind, random_part):
    prefix = KIND_PREFIXES[kind]
    if len(random_part) != RANDOM_LENGTH or any(c not in BASE62_ALPHABET for c in random_part):
        raise ValueError("the random part must be 32 base62 characters")
    return prefix + random_part + checksum(prefix, random_part)


def generate(kind):
    """A fresh key of ``kind`` ('publishable' or 'secret') from the OS CSPRNG."""
    return assemble(kind, "".join(secrets.choice(BASE62_ALPHABET) for _ in range(RANDOM_LENGTH)))


def derive(kind, key_material, label):
    """A key recomputable by whoever holds ``key_material`` (used for Test chat preview keys)."""
    number = int.from_bytes(hmac.new(key_material, label.encode(), hashlib.sha512).digest(), "big")
    return assemble(kind, base62(number)[:RANDOM_LENGTH])


def parse_kind(key):
    """Return the kind of a well-formed key, or None (bad prefix, length, alphabet or checksum)."""
    if not isinstance(key, str) or len(key) != KEY_LENGTH:
        return None
    for kind, prefix in KIND_PREFIXES.items():
        if key.startswith(prefix):
            random_part = key[len(prefix) : -CHECKSUM_LENGTH]
            if any(c not in BASE62_ALPHABET for c in random_part):
                return None
            if hmac.compare_digest(key[-CHECKSUM_LENGTH:], checksum(prefix, random_part)):
                return kind
    return None


def hash_key(key):
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key):
    return key[:DISPLAY_PREFIX_LENGTH]
