"""The framework-free core: argument checks, conversions, the backend registry, the chapter's operations, gradcheck.

Everything above it (``nn``, ``data``, ``train``, ``chapter``) computes through
these modules; they call only the backend protocol (:mod:`convlab.backends.base`).
"""
