"""Password hashing: argon2id (memory-hard, salted) from argon2-cffi, RFC 9106 parameters.

    h = hash_password("correct horse battery")    # '$argon2id$v=19$m=65536,t=3,p=4$...'
    verify(h, "correct horse battery")            # True; False for any other password
"""

from __future__ import annotations

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults: RFC 9106's second recommended option (64 MiB, t=3, p=4).
DEFAULT = profiles.RFC_9106_LOW_MEMORY
_parameters = DEFAULT
_hasher = PasswordHasher.from_parameters(DEFAULT)
# Verified when a name is unknown, so an unknown name takes as long to refuse as a wrong password.
_DUMMY = _hasher.hash("modelwatch: no such user")


def use(parameters: Parameters) -> None:
    """Hash new passwords with these argon2 parameters in this process from now on (the test
    suite: `argon2.profiles.CHEAPEST`, 0.1 ms instead of 0.25 s a hash). Every hash keeps
    its own parameters, so `verify` reads hashes made with any; `needs_rehash` compares
    with these. Nothing in the product calls it: the app and the CLI hash with DEFAULT."""
    global _hasher, _DUMMY, _parameters
    _parameters, _hasher = parameters, PasswordHasher.from_parameters(parameters)
    _DUMMY = _hasher.hash("modelwatch: no such user")



def parameters() -> Parameters:
    """The argon2 parameters new hashes are made with (DEFAULT unless `use` said otherwise)."""
    return _parameters


class PasswordError(ValueError):
    """A new password is not acceptable; the message says why (never the password)."""


def check_new(password: str, min_length: int = 12) -> str:
    if not isinstance(password, str) or len(password) < min_length:
        raise PasswordError(f"a password needs at least {min_length} characters")
    if len(password) > 1024:
        raise PasswordError("a password is at most 1,024 characters")
    if password.strip() != password:
        raise PasswordError("a password may not start or end with spaces")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash; False otherwise (also for no hash)."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
