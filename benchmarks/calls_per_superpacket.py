"""Python-level calls per superpacket in the data direction of a forwarder (cProfile; needs root).

usage: python benchmarks/calls_per_superpacket.py [--megabytes N]

Two TUNs in namespaces (tio_linux.netns.TunLink.open), one TCP transfer A -> B.
Both directions are forwarded by threads of this process; the A -> B direction
runs under cProfile. Measured for tio forward's Forwarder (segment + coalesce)
and for examples/tun_bridge.py's pump_segment.
"""

import argparse
import cProfile
import importlib.util
import pstats
import threading
from collections import Counter
from pathlib import Path

from tio_core.errors import QueueClosed
from tio_core.forward import Forwarder
from tio_linux.netns import TunLink

BRIDGE = Path(__file__).resolve().parents[1] / "examples" / "tun_bridge.py"


def load_bridge():
    spec = importlib.util.spec_from_file_location("tun_bridge", BRIDGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def profiled(run, box):
    profile = cProfile.Profile()
    try:
        profile.runcall(run)
    except QueueClosed:
        pass
    finally:
        box["stats"] = pstats.Stats(profile)


def measure(kind: str, megabytes: int) -> None:
    with TunLink() as link:
        qa, qb = link.open()
        a, b = qa.queues()[0], qb.queues()[0]
        box, counter = {}, Counter()
        if kind == "forward":
            data, back = Forwarder(a, b), Forwarder(b, a)
            runs = (data.run, back.run)
        else:
            bridge = load_bridge()

            def pump(src, dst, stats):
                def run():
                    try:
                        bridge.pump_segment(src, dst, stats)
                    except QueueClosed:
                        pass

                return run

            runs = (pump(a, b, counter), pump(b, a, Counter()))
        threads = [threading.Thread(target=profiled, args=(runs[0], box)), threading.Thread(target=runs[1])]
        for thread in threads:
            thread.start()
        result = link.tcp(megabytes * 1024 * 1024)
        assert result.intact, result
        qa.close()
        qb.close()
        for thread in threads:
            thread.join(10)
        stats = box["stats"]
        superpackets = data.stats.superpackets if kind == "forward" else None
        reads = stats.stats.get(next(k for k in stats.stats if k[2] == "read" and "queue.py" in k[0]), (0, 0))[1]
        print(f"{kind}: {stats.total_calls} calls, {reads} queue reads, superpackets {superpackets}, {megabytes} MB")
        if superpackets:
            print(f"  {stats.total_calls / superpackets:.0f} calls per superpacket")
        stats.sort_stats("ncalls").print_stats(14)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    for kind in ("forward", "bridge"):
        measure(kind, args.megabytes)
