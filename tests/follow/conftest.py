"""The loopback sites of ``tests.follow.servers`` as fixtures for every test here."""

from tests.follow.servers import site as site
