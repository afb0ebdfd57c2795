"""What tio-core itself contributes through its own hooks: the core benchmarks."""

from tio_core.plugin.api import BenchmarkDef, hookimpl


@hookimpl
def tio_register_benchmarks() -> list[BenchmarkDef]:
    return [
        BenchmarkDef("kernels", "checksum and superpacket segmentation vs a plain copy", "tio_core.bench.kernels:run"),
        BenchmarkDef("coalesce", "TCP write coalescing vs one write per packet", "tio_core.bench.coalesce:run"),
    ]
