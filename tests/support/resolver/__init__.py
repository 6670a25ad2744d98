"""The tests' own resolver (sitecustomize.py): this directory is on the PYTHONPATH of every process tests start."""
