"""Passwords: argon2id hashes (argon2-cffi, RFC 9106's low-memory profile), and the check a new
password must pass (length, not a common password, not the username)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from geo.errors import InvalidInput

PROFILE = profiles.RFC_9106_LOW_MEMORY  # argon2id, 3 passes over 64 MiB, 4 lanes
_HASHER = PasswordHasher.from_parameters(PROFILE)
# Verified against when the user is unknown, so that an unknown name costs as long as a wrong
# password and the answer's timing tells nothing.
_DUMMY = _HASHER.hash("riskgrid: no such user")


def hash_password(password: str) -> str:
    """Return the argon2id hash of `password` (salted; the parameters are in the hash)."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Return whether `password` matches the stored hash (None: no password login)."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Return whether the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)


@functools.cache
def _common() -> frozenset[str]:
    # zxcvbn's list of the 30,000 most common passwords (from leaked password sets).
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_new_password(password: str, username: str, min_length: int) -> None:
    """Raise InvalidInput unless `password` is fit to use, saying what to change."""
    if len(password) < min_length:
        raise InvalidInput(f"the password needs at least {min_length} characters")
    if len(password) > 256:
        raise InvalidInput("the password may have at most 256 characters")
    lowered = password.lower()
    if lowered in _common() or lowered.strip("0123456789!@#$%^&*.") in _common():
        raise InvalidInput("that password is one of the most common ones: choose another")
    if username.lower() in lowered:
        raise InvalidInput("the password must not contain the username")
    if len(set(password)) < 4:
        raise InvalidInput("the password repeats too few characters: choose another")
