"""Registers the ``fake`` backend; imported on every discovery, so it imports nothing heavy."""

from tio_core import BackendDef, BenchmarkDef, Option, hookimpl

FAKE_OPTIONS = (
    Option("queues", int, 1, "number of queues in the set"),
    Option("max_batch", int, 64, "most packets one read() returns"),
    Option(
        "capabilities",
        str,
        None,
        "unset: permissive GSOWriter without capabilities; 'tso', 'uso', 'tso,uso' or 'none': "
        "a CapsProvider that negotiated exactly those",
    ),
    Option("read_timeout", float, None, "seconds read() waits before ReadTimeout (unset: forever)"),
    Option("blocking", bool, True, "false: read() returns [] instead of waiting"),
    Option("end_of_stream", bool, False, "true: read() on an empty queue raises EndOfStream"),
)


@hookimpl
def tio_register_backends():
    return [
        BackendDef(
            name="fake",
            description="in-memory queues for tests: inject packets, inspect writes (no root, no kernel)",
            factory="tio_fake.backend:open_fake",
            options=FAKE_OPTIONS,
        )
    ]


@hookimpl
def tio_register_benchmarks():
    return [
        BenchmarkDef("fake", "packet_factory flows vs scapy per packet; fake queue round trip", "tio_fake.bench:run")
    ]


@hookimpl
def tio_register_contract_harness():
    return {"fake": "tio_fake.contract_harness:FakeHarness"}
