"""The recording upstream (a test double for a model server) for the gateway tests here."""

from tests.security.conftest import rec_upstream  # noqa: F401
