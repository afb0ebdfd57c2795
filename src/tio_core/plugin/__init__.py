"""Plugins: the hook API (``api``), typed options, discovery (``registry``) and TOML config."""
