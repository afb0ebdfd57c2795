"""tio backend ``pcap``: replay capture files as a Queue and record what is written.

Kept empty of imports on purpose: the plugin module is imported on every
backend discovery, the implementation only when the backend is opened.
"""
