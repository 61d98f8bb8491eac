"""Backend adapters: one module per framework, each defining one :class:`~convlab.backends.base.Backend`.

Modules here must not import their framework at module level; see
:mod:`convlab.backends.base`.
"""
