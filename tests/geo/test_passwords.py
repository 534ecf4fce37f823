"""The password hashes as shipped (the tests hash with cheaper parameters: tests/conftest.py)."""

from argon2 import PasswordHasher, extract_parameters, profiles

from geo.identity import passwords


def test_shipped_hashes_are_argon2id_with_rfc_9106s_low_memory_profile():
    assert passwords.PROFILE == profiles.RFC_9106_LOW_MEMORY
    assert passwords.PROFILE.type.name == "ID" and passwords.PROFILE.memory_cost == 65536
    shipped = PasswordHasher.from_parameters(passwords.PROFILE)
    stored = passwords.hash_password("a test password")  # the tests' cheaper parameters
    assert extract_parameters(stored).time_cost == 1
    assert passwords.verify_password(stored, "a test password")
    assert not passwords.verify_password(stored, "another password")
    # A hash with weaker parameters than the shipped ones is made again at the next login.
    assert shipped.check_needs_rehash(stored)
    assert not shipped.check_needs_rehash(shipped.hash("a test password"))
