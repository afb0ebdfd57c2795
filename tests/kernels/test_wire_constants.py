"""One definition per fact: the C kernels' constants (csrc/wire.h) equal tio_core.wire's.

The extension exports every wire fact it is built on under wire.py's name; a
change on one side only fails here, naming the constant.
"""

import pytest

from tio_core import wire
from tio_core.kernels import _pykernels
from tio_core.kernels.native import built_extension

C = built_extension()
pytestmark = pytest.mark.skipif(C is None, reason="the C extension is not built")

WIRE_INTS = {name: value for name, value in vars(wire).items() if name.isupper() and type(value) is int}


def test_wire_has_the_facts_the_kernels_need():
    assert {"MAX_IP_PACKET", "GSO_TCPV4", "TCP_CSUM_OFFSET", "IPV4_DF", "TCP_CWR"} <= set(WIRE_INTS)


@pytest.mark.parametrize("name", sorted(WIRE_INTS))
def test_c_exports_each_wire_constant_with_the_same_value(name):
    assert hasattr(C, name), f"csrc/wire.h does not export {name}, which tio_core.wire defines"
    assert getattr(C, name) == WIRE_INTS[name], (
        f"{name}: C says {getattr(C, name)}, tio_core.wire says {WIRE_INTS[name]}"
    )


def test_c_exports_no_wire_constant_that_python_lacks():
    exported = {name for name in dir(C) if name.isupper() and type(getattr(C, name)) is int}
    limits = {"MAX_SEGMENTED_SIZE", "MAX_SEGMENT_COUNT"}  # the kernels' own limits, tied to the pure twin below
    assert exported - limits <= set(WIRE_INTS), f"C-only constants: {sorted(exported - limits - set(WIRE_INTS))}"


def test_segmentation_limit_is_the_same_in_c_and_in_the_pure_twin():
    assert C.MAX_SEGMENTED_SIZE == _pykernels.MAX_SEGMENTED_SIZE
    assert C.MAX_SEGMENT_COUNT == _pykernels.MAX_SEGMENT_COUNT
