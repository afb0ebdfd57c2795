"""What a backend author writes so the contract suite can drive their backend, and how the suite finds it.

The suite cannot know how to put packets into a backend's queue or see what
it wrote; a ContractHarness says so, together with the behaviour the contract
leaves to the backend (finite or live, how borrowed views end, the batch
limit). Register it from the plugin module that registers the backend:

    @hookimpl
    def tio_register_contract_harness():
        return {"mybackend": "my_package.contract_harness:MyHarness"}

A backend without a harness still gets the part of the suite that needs
none (opening, capabilities, write_gso's geometry checks, closing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tio_core.contract import QueueSet
from tio_core.errors import ConfigError, TioError
from tio_core.plugin.api import resolve_target
from tio_core.plugin.options import validate_options
from tio_core.plugin.registry import BackendRegistry, default_registry

HARNESS_HOOK = "tio_register_contract_harness"


class ContractHarness(ABC):
    """Opens a backend with known inbound traffic and shows what it emitted.

    The suite constructs one per test as ``Harness(backend, options, workdir)``:
    ``options`` are the backend options of the ``--tio-contract`` spec (already
    validated), ``workdir`` a fresh temporary directory. Set these class (or
    instance) attributes:

    finite: True when reading past the inbound packets raises EndOfStream
        (a replayed capture). False when such a read blocks until more data or
        close (a live device); the suite then checks that close() from another
        thread wakes the blocked reader with QueueClosed.
    borrow_invalidates: True when the memoryviews of one read are released by
        the next read/close (touching them raises ValueError). False when they
        point into one reused per-queue buffer (every read's views share the
        same underlying ``memoryview.obj``) that later reads overwrite.
    max_batch: the most packets one read() may return as opened by this
        harness. Keep it below 64: the suite sends ``max_batch + 1`` packets
        or more to force several reads.
    read_timeout: seconds the suite waits for inbound packets before it closes
        the set to stop a read that would otherwise block forever.
    owned_options: backend options the harness sets itself (a spec that gives
        one is refused with a message saying so).

    The suite feeds plain, fully checksummed IPv4/IPv6 TCP/UDP packets of at
    most 1400 bytes, addressed inside 198.18.0.0/15 and fd00::/8, never more
    than ``2 * max_batch + 10`` per open().
    """

    finite: bool = False
    borrow_invalidates: bool = True
    max_batch: int = 16
    read_timeout: float = 10.0
    owned_options: tuple[str, ...] = ()

    def __init__(self, backend: str, options: Mapping[str, Any], workdir: Path) -> None:
        self.backend = backend
        self.options = dict(options)
        self.workdir = workdir

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the harness cannot run on this machine (e.g. "needs root"), or None; the suite then skips."""
        return None

    @abstractmethod
    def open(self, inbound: Sequence[bytes]) -> QueueSet:
        """Open a fresh queue set whose queue 0 reads exactly ``inbound``, in order.

        The packets may arrive after open() returns (injected into a live
        device); reads then block until they do. Each call opens a new set;
        the suite closes every set it opens. A live device must stay quiet
        otherwise: nothing of the kernel's own (IPv6 router solicitations,
        MLD reports) may reach the reader.
        """

    @abstractmethod
    def outbound(self, qs: QueueSet, min_count: int = 0) -> list[bytes]:
        """Wire IP packets emitted so far through ``qs`` by write and write_gso, in order.

        A write_gso must appear as the kernel delivers it: one fully
        checksummed packet per payload fragment. Backends whose capture is
        asynchronous wait (up to a few seconds) until at least ``min_count``
        packets were seen; the suite always passes the count it expects, so
        a lost or extra packet shows up as a wrong list, not as a hang.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release harness-wide resources (namespaces, temporary files); idempotent."""


class HarnessError(TioError):
    """A contract harness is registered wrongly (bad hook result, not a ContractHarness, two for one backend)."""


@dataclass(frozen=True)
class BackendUnderTest:
    """One ``--tio-contract`` spec, resolved: the backend, its options and its harness (if any)."""

    spec: str
    name: str
    options: dict[str, Any]
    harness_class: type[ContractHarness] | None = None
    harness_origin: str = ""
    registry: BackendRegistry = field(default_factory=default_registry, repr=False, compare=False)

    def make_harness(self, workdir: Path) -> ContractHarness | None:
        if self.harness_class is None:
            return None
        return self.harness_class(self.name, self.options, workdir)

    def open_plain(self) -> QueueSet:
        """The backend opened with the spec's options, for the part of the suite that needs no harness."""
        return self.registry.open_backend(self.name, **self.options)


def resolve_spec(spec: str, registry: BackendRegistry | None = None) -> BackendUnderTest:
    """Parse ``NAME[:key=value,...]`` as the CLI does and find the backend's harness.

    Raises a TioError (BackendNotFound, ConfigError, HarnessError) that says what is wrong.
    """
    from tio_core.cli import parse_backend_spec  # the one parser of backend specs

    registry = registry or default_registry()
    name, given = parse_backend_spec(spec, registry)  # BackendNotFound with a did-you-mean
    options = dict(given)
    found = registered_harnesses(registry).get(name)
    if found is None:
        validate_options(name, registry.get(name).options, options)  # a typo fails here, not in every test
        return BackendUnderTest(spec, name, options, registry=registry)
    target, origin = found
    harness_class = resolve_target(target, f"contract harness for backend {name!r} from {origin}")
    if not (isinstance(harness_class, type) and issubclass(harness_class, ContractHarness)):
        raise HarnessError(
            f"{origin}: the contract harness for backend {name!r} is {harness_class!r}, "
            "not a subclass of tio_testing.ContractHarness"
        )
    owned = sorted(set(options) & set(harness_class.owned_options))
    if owned:
        raise ConfigError(
            f"--tio-contract {spec}: option {owned[0]!r} is set by {harness_class.__name__} itself "
            f"(it owns {', '.join(harness_class.owned_options)}); leave it out of the spec"
        )
    validate_options(name, registry.get(name).options, options)
    return BackendUnderTest(spec, name, options, harness_class, origin, registry)


def registered_harnesses(registry: BackendRegistry) -> dict[str, tuple[Any, str]]:
    """{backend name: (harness class or "module:Class", plugin label)} from every plugin's hook."""
    manager = registry.plugin_manager
    hook = getattr(manager.hook, HARNESS_HOOK, None)
    if hook is None:  # a tio-core without the hookspec
        return {}
    found: dict[str, tuple[Any, str]] = {}
    for impl in reversed(hook.get_hookimpls()):
        label = manager.get_name(impl.plugin) or repr(impl.plugin)
        try:
            result = impl.function()
        except Exception as exc:
            raise HarnessError(f"{label}: {HARNESS_HOOK} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(result, Mapping):
            raise HarnessError(
                f"{label}: {HARNESS_HOOK} must return a dict of backend name -> harness class or "
                f"'module:Class', got {type(result).__name__}"
            )
        for backend, target in result.items():
            if backend in found:
                raise HarnessError(
                    f"two contract harnesses for backend {backend!r}: from {found[backend][1]} and from {label}"
                )
            found[backend] = (target, label)
    return found


__all__ = ["BackendUnderTest", "ContractHarness", "HarnessError", "registered_harnesses", "resolve_spec"]
