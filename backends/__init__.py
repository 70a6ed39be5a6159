"""Built-in backends of mnc, installed as the import package ``mnc_backends``."""
