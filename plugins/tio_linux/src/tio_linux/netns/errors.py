"""Errors of the network-namespace toolkit: each says what failed and where."""

from __future__ import annotations

from tio_core.errors import ConfigError, TioError


class NetnsError(TioError):
    """A namespace, device or process of the toolkit could not be set up or used."""


class ForwarderError(NetnsError):
    """The forwarder process under test exited early or never created its TUN devices."""


class TrafficError(NetnsError):
    """A transfer could not run at all (no connection, nothing arrived in time)."""


class AddressError(ConfigError):
    """An address outside the test ranges 198.18.0.0/15 and fd00::/8."""
