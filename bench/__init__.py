"""Benchmarks of the agent beside Debian's Prometheus exporters: `bench/run.sh` or `python -m bench`."""
