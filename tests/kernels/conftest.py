import pytest

from tio_core import _pykernels

IMPLEMENTATIONS = {"pure": _pykernels}
try:
    from tio_core import _ckernels
except ImportError:  # pragma: no cover - the C extension is part of the build
    _ckernels = None
if _ckernels is not None and hasattr(_ckernels, "segment"):
    IMPLEMENTATIONS["c"] = _ckernels


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def k(request):
    """Each packet-kernel implementation in turn (the C one and its pure twin)."""
    return IMPLEMENTATIONS[request.param]
