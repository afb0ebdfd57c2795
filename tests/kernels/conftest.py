import pytest

from tio_core.kernels import _pykernels
from tio_core.kernels.native import built_extension

IMPLEMENTATIONS = {"pure": _pykernels}
if (_ckernels := built_extension()) is not None:
    IMPLEMENTATIONS["c"] = _ckernels


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def k(request):
    """Each packet-kernel implementation in turn (the C one and its pure twin)."""
    return IMPLEMENTATIONS[request.param]
