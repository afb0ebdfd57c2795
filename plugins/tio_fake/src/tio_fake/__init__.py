"""tio-fake: an in-memory tio backend and pytest fixtures for testing code that uses tio.

The names below load lazily so that backend discovery, which imports
``tio_fake.plugin``, stays cheap. Modules, one job each: ``queue`` (FakeQueue),
``caps`` (a queue that negotiated offloads), ``fd_queue`` (a queue on a
socket), ``backend`` (the set, registered as backend ``fake``), ``pair``
(two sets back to back), ``records`` (what a write looked like),
``validation`` (what a TUN accepts), ``packets`` (PacketFactory),
``pytest_plugin`` (fixtures) and ``contract_harness`` (for the contract suite).
"""

from tio_core.plugin.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "tio_fake.queue": ("FakeQueue", "STALE_MARKER"),
        "tio_fake.caps": ("FakeCapsQueue",),
        "tio_fake.fd_queue": ("FdQueue", "FdCapsQueue"),
        "tio_fake.backend": ("FakeQueueSet", "open_fake"),
        "tio_fake.pair": ("fake_pair",),
        "tio_fake.errors": ("FakeFdError", "ReadTimeout"),
        "tio_fake.records": ("WriteRecord", "DELIVER_SEGMENTED", "DELIVER_SUPERPACKET"),
        "tio_fake.validation": ("check_ip_packet",),
        "tio_fake.packets": ("PacketFactory", "MALFORMED_KINDS", "payload_pattern"),
    },
)
