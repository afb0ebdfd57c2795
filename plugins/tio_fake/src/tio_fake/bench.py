"""Benchmark for `tio bench fake`: why packet_factory patches bytes instead of calling scapy per packet."""

from __future__ import annotations

from tio_core.bench import Figure, best_rate


def run(quick: bool = False) -> list[Figure]:
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw

    from tio_fake.backend import open_fake
    from tio_fake.packets import PacketFactory, payload_pattern

    seconds = 0.3 if quick else 1.5
    count = 200 if quick else 1000
    factory = PacketFactory()
    data = payload_pattern(count * 1000)

    def scapy_flow():
        return [
            bytes(
                IP(src="198.18.0.2", dst="198.18.0.1", id=1 + i, flags="DF")
                / TCP(sport=40000, dport=5000, seq=1 + i * 1000, flags="A", window=65535)
                / Raw(data[i * 1000 : (i + 1) * 1000])
            )
            for i in range(count)
        ]

    assert factory.tcp_flow(count, 1000, payload=data) == scapy_flow()  # same bytes, or the figure is meaningless
    factory_rate = best_rate(lambda: factory.tcp_flow(count, 1000, payload=data), count, seconds)
    scapy_rate = best_rate(scapy_flow, count, seconds)

    packets = factory.udp_flow(64, 100)
    queue_set = open_fake(max_batch=64)
    with queue_set:
        queue = queue_set[0]

        def round_trip():
            queue.inject(*packets, validate=False)
            queue.read()

        fake_rate = best_rate(round_trip, len(packets), seconds)
    return [
        Figure("packet_factory tcp_flow, 1000 B segments", factory_rate, "pkt/s", "scapy build per packet", scapy_rate),
        Figure("fake queue inject + read, 64-packet batches", fake_rate, "pkt/s"),
    ]


if __name__ == "__main__":
    from tio_core.cli.output import figure_table

    print(figure_table(run()))
