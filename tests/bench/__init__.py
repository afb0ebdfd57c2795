"""Tests of the benchmark helpers: figures, the chart and the JSON document."""
