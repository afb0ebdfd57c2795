"""The kernels benchmark runs and reports every figure the issue asks for (no timing asserted)."""

from tio_core.bench import Figure
from tio_core.bench import kernels as bench_kernels

from .conftest import IMPLEMENTATIONS


def test_quick_run_reports_all_figures_beside_a_copy_baseline():
    figures = bench_kernels.run(quick=True)
    names = {f.name for f in figures}
    paths = ["pure"] + (["C, reused buffer", "C, fresh buffer"] if "c" in IMPLEMENTATIONS else [])
    for proto in ("TCPv4", "UDPv6"):
        for size in ("64KiB", "16KiB", "4KiB"):
            for path in paths:
                assert f"segment {proto} {size} MSS 1448 ({path})" in names
    assert "checksum 64KiB (pure)" in names
    assert ("checksum 64KiB (C)" in names) == ("c" in IMPLEMENTATIONS)
    for fig in figures:
        assert isinstance(fig, Figure) and fig.unit == "GB/s" and fig.baseline_name == "bytes copy"
        assert fig.value > 0 and fig.baseline_value > 0


def test_benchmark_superpackets_are_valid():
    from tio_core.kernels import _pykernels
    from tio_core.wire import GSO_TCPV4, GSO_UDP_L4, NEEDS_CSUM, VirtioNetHdr

    for build, gso_type, offset in (
        (bench_kernels.tcpv4_superpacket, GSO_TCPV4, 16),
        (bench_kernels.udpv6_superpacket, GSO_UDP_L4, 6),
    ):
        packet = build(65535)
        assert len(packet.data) == 65535
        hdr = VirtioNetHdr(NEEDS_CSUM, gso_type, 0, 1448, packet.gso.csum_start, offset)
        assert _pykernels.gso_info_from_vnet(hdr, packet.data) == packet.gso
        assert len(_pykernels.segment(packet)) == -(-(65535 - packet.gso.hdr_len) // 1448)
