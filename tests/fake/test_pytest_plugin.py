"""The tio_fake pytest plugin, loaded from its pytest11 entry point in fresh pytest runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "README.md"  # the "Testing your code with tio" section
FILE_BLOCK = re.compile(r"^`(?P<path>[\w/.]+)`\n```\w+\n(?P<body>.*?)^```", re.M | re.S)


# hypothesis's pytest plugin costs seconds to import and none of these runs use it.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def run_fresh(pytester, *args, timeout=60):
    """A new pytest process: plugins come only from installed entry points."""
    return pytester.runpytest_subprocess(*QUIET, *args, timeout=timeout)


def test_fixtures_load_from_the_entry_point(pytester):
    pytester.makepyfile(
        """
        from tio_core import Capabilities, GSOProto, queue_capabilities, supports_gso
        from tio_fake import FakeQueue, FakeQueueSet


        def test_plugin_registered_by_entry_point(request):
            assert request.config.pluginmanager.get_plugin("tio_fake") is not None


        def test_fake_queue_is_queue_zero(fake_queue, fake_queue_set):
            assert isinstance(fake_queue_set, FakeQueueSet)
            assert fake_queue is fake_queue_set.queues()[0] and isinstance(fake_queue, FakeQueue)
            assert supports_gso(fake_queue, GSOProto.UDP)[1]


        def test_inject_and_read(fake_queue, packet_factory):
            fake_queue.inject(*packet_factory.udp_flow(3, 50))
            assert [bytes(p.data) for p in fake_queue.read()] == packet_factory.udp_flow(3, 50)


        def test_pair(fake_pair, packet_factory):
            left, right = fake_pair
            left.queues()[0].write(packet_factory.tcp(b"hi"))
            assert bytes(right.queues()[0].read()[0].data) == packet_factory.tcp(b"hi")


        def test_factory_is_session_wide(packet_factory, request):
            assert request.getfixturevalue("packet_factory") is packet_factory
        """
    )
    result = run_fresh(pytester, "-v")
    result.assert_outcomes(passed=5)


def test_marker_configures_the_fixtures(pytester):
    pytester.makepyfile(
        """
        import pytest
        from tio_core import Capabilities, GSOProto, OffloadError, queue_capabilities


        @pytest.mark.tio_fake(capabilities="tso", max_batch=2, queues=3)
        def test_caps_and_batch(fake_queue_set, fake_queue, packet_factory):
            assert len(fake_queue_set.queues()) == 3
            assert queue_capabilities(fake_queue) == Capabilities(tso=True, uso=False)
            fake_queue.inject(*packet_factory.udp_flow(5, 10))
            assert len(fake_queue.read()) == 2
            with pytest.raises(OffloadError):
                fake_queue.write_gso(*packet_factory.gso_write_args(3000, 1000, GSOProto.UDP))


        @pytest.mark.tio_fake(max_batch=8)
        class TestClassLevel:
            @pytest.mark.tio_fake(max_batch=1)
            def test_function_marker_wins(self, fake_queue, packet_factory):
                fake_queue.inject(*packet_factory.udp_flow(2, 10))
                assert len(fake_queue.read()) == 1

            def test_class_marker(self, fake_queue, packet_factory):
                fake_queue.inject(*packet_factory.udp_flow(9, 10))
                assert len(fake_queue.read()) == 8


        @pytest.mark.tio_fake(deliver="superpacket")
        def test_pair_delivery(fake_pair, packet_factory):
            left, right = fake_pair
            left.queues()[0].write_gso(*packet_factory.gso_write_args(3000, 1000, GSOProto.TCP))
            (packet,) = right.queues()[0].read()
            assert packet.gso.size == 1000


        @pytest.mark.tio_fake(colour="red")
        def test_bad_option(fake_queue):
            pass
        """
    )
    result = run_fresh(pytester, "--strict-markers")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*ConfigError*colour*"])


def test_sets_are_closed_after_each_test(pytester):
    pytester.makepyfile(
        """
        import pytest
        from tio_core import QueueClosed

        seen = []


        def test_first(fake_queue_set, fake_pair):
            seen.extend([fake_queue_set, *fake_pair])


        def test_then_closed():
            assert len(seen) == 3 and all(s.closed for s in seen)
            with pytest.raises(QueueClosed):
                seen[0].queues()[0].read()
        """
    )
    run_fresh(pytester).assert_outcomes(passed=2)


def test_keeping_a_borrowed_view_fails_the_users_test(pytester):
    pytester.makepyfile(
        """
        def test_wrong_code(fake_queue, packet_factory):
            fake_queue.inject(*packet_factory.udp_flow(2, 10))
            kept = [p.data for p in fake_queue.read()]
            fake_queue.inject(packet_factory.udp())
            fake_queue.read()
            assert bytes(kept[0])  # use after the borrow ended
        """
    )
    result = run_fresh(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*released memoryview*"])


def test_plugin_can_be_disabled(pytester):
    pytester.makepyfile("def test_needs(fake_queue):\n    pass\n")
    result = run_fresh(pytester, "-p", "no:tio_fake")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_queue' not found*"])


def test_documented_example_passes(pytester):
    files = {m["path"]: m["body"] for m in FILE_BLOCK.finditer(DOC.read_text())}
    assert set(files) == {"datapath.py", "test_datapath.py"}
    for name, body in files.items():
        pytester.makepyfile(**{name[:-3]: body})
    result = run_fresh(pytester, "-v", "--strict-markers")
    result.assert_outcomes(passed=4)


# -- reads never hang a test run -------------------------------------------------------
def test_reading_an_empty_fake_queue_fails_within_the_default_timeout(pytester):
    """The rule: a fixture read that nothing satisfies fails the test (default 5 s), naming fixture and wait."""
    pytester.makepyfile(
        """
        def test_reads_once_too_often(fake_queue, packet_factory):
            fake_queue.inject(packet_factory.udp(b"only one"))
            fake_queue.read()
            fake_queue.read()
        """
    )
    result = run_fresh(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ReadTimeout: fake0 of fixture fake_queue (queue 0 of fake_queue_set): read() waited 5 s for an "
            "injected packet and none arrived; inject the packets before reading, or let reads wait longer with "
            "@pytest.mark.tio_fake(read_timeout=SECONDS) or the ini option tio_fake_read_timeout (none: forever)"
        ]
    )


def test_ini_option_and_marker_set_the_read_timeout(pytester):
    pytester.makepyfile(
        """
        import socket
        import threading

        import pytest


        def test_pair_reader_names_its_side(fake_pair):
            left, right = fake_pair
            right.queues()[0].read()


        def test_socket_queue_says_it_waited_for_a_datagram(fake_queue_set):
            mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            queue = fake_queue_set.add(mine.detach())
            with peer:
                queue.read()


        @pytest.mark.tio_fake(read_timeout=0.4)
        def test_marker_wins(fake_queue):
            fake_queue.read()


        @pytest.mark.tio_fake(read_timeout=None)
        def test_marker_none_waits_for_as_long_as_it_takes(fake_queue, packet_factory):
            threading.Timer(0.5, fake_queue.inject, [packet_factory.udp()]).start()
            assert len(fake_queue.read()) == 1
        """
    )
    result = run_fresh(pytester, "-o", "tio_fake_read_timeout=0.1")
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*fake0 of fixture fake_pair, right set: read() waited 0.1 s for a packet written by its peer queue "
            "or injected and none arrived*",
            "*fake1 of fixture fake_queue_set: read() waited 0.1 s for a datagram on its socket (fd *) or an "
            "injected packet and none arrived*",
            "*fake0 of fixture fake_queue (queue 0 of fake_queue_set): read() waited 0.4 s*",
        ]
    )


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_ini_timeout_is_a_usage_error(pytester, value):
    pytester.makepyfile("def test_read(fake_queue):\n    fake_queue.read()\n")
    result = pytester.runpytest_inprocess(*QUIET, "-o", f"tio_fake_read_timeout={value}")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*tio_fake_read_timeout must be seconds >= 0 or 'none', got*"])
