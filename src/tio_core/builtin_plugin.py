"""What tio-core itself contributes through its own hooks: the core benchmarks."""

from tio_core.hookspecs import hookimpl


@hookimpl
def tio_register_benchmarks():
    from tio_core.registry import BenchmarkDef

    return [
        BenchmarkDef("kernels", "checksum and superpacket segmentation vs a plain copy", "tio_core.bench_kernels:run"),
        BenchmarkDef("coalesce", "TCP write coalescing vs one write per packet", "tio_core.bench_coalesce:run"),
    ]
