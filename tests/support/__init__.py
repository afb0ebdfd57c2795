"""Helpers shared by more than one test area (packet builders, plugin distributions, a TUN from a namespace)."""
