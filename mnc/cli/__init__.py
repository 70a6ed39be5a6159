"""The ``mnc`` command line: one module per command, listed explicitly in ``main.py``."""
