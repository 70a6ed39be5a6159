"""Spec: the YAML file of anatomical measurements, read safely and validated by pydantic."""

from mnc.spec.loader import load_spec
from mnc.spec.models import Spec

__all__ = ["Spec", "load_spec"]
