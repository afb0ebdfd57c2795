import pytest

from tests.support.coalesce import RecordingWriter, normalize_df_id
from tio_core.coalesce import Coalescer

IMPLEMENTATIONS = ["c", "pure"]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    return request.param


@pytest.fixture
def coalesce(impl):
    """coalesce(packets, tcp=True, udp=True, verify_checksums=True) -> RecordingWriter after one flush.

    Also checks that the kernel-resegmented output equals the input in order
    (the DF/ID exception applied) unless ``check_roundtrip=False``.
    """

    def run(packets, *, tcp=True, udp=True, verify_checksums=True, check_roundtrip=True):
        writer = RecordingWriter()
        co = Coalescer(writer, tcp=tcp, udp=udp, verify_checksums=verify_checksums, implementation=impl)
        co.add_many(packets)
        co.flush()
        if check_roundtrip:
            assert [normalize_df_id(p) for p in writer.wire()] == [normalize_df_id(bytes(p)) for p in packets]
        return writer

    return run
