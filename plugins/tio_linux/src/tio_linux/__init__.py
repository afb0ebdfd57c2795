"""tio backend 'linux': the kernel TUN driver with virtio_net_hdr offloads.

Importing this package is cheap; the implementation lives in
tio_linux.backend and is loaded only when the backend is opened.
"""
