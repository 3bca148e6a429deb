"""SMKI sandbox: a standards-faithful stand-in for the GB Smart Metering Key Infrastructure."""

__version__ = "0.1.0"
