"""Sphinx configuration of convlab's documentation site.

Build it with ``bash scripts/build-docs.sh`` (see that script for what it
assumes). Everything the site shows about convlab's behaviour is produced at
build time: the notebooks are executed, the side-by-side tabs quote the
adapters' source and run each backend, the parity table is computed and the
API reference is generated from ``convlab.__all__``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # convlab itself, also when it is not pip-installed
sys.path.insert(0, str(DOCS / "_ext"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # inherited by the notebooks' kernels too
# The notebooks' kernels import convlab from this checkout, installed or not.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
import convlab  # noqa: E402

project = "convlab"
author = "the convlab authors"
copyright = "the convlab authors, Apache-2.0"
release = version = convlab.__version__

extensions = [
    "myst_nb",  # Markdown pages (MyST) and executed notebooks
    "sphinx_design",  # tab sets, cards, grids
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # convlab's numpydoc-style docstrings
    "sphinx.ext.graphviz",  # the architecture diagram, rendered to SVG at build time
    "sphinx.ext.intersphinx",
    "convlab_docs",  # docs/_ext: notebooks, backend tabs, parity table, API list
    "protocol_table",  # docs/_ext: the backend protocol's table, read from convlab.backends.base
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", ".jupyter_cache", "jupyter_execute"]
templates_path: list[str] = []

# -- MyST and MyST-NB ----------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "fieldlist"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # every build runs the notebooks against the convlab of this checkout
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# -- autodoc -------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
napoleon_preprocess_types = True

# Offline-friendly: no inventory is fetched unless CONVLAB_DOCS_INTERSPHINX=1.
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
    }
    if os.environ.get("CONVLAB_DOCS_INTERSPHINX") == "1"
    else {}
)

# -- graphviz ------------------------------------------------------------------------
graphviz_output_format = "svg"  # an SVG file made by dot at build time: renders offline, no JavaScript

# -- math ----------------------------------------------------------------------------
html_math_renderer = "mathml"  # docs/_ext/convlab_docs.py: native MathML, no MathJax from a CDN

# -- HTML ----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"convlab {release}"
html_static_path = ["_static"]
html_css_files = ["convlab.css"]
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars: dict[str, list[str]] = {"**": []}  # the pages are few: the top bar lists them all
html_show_sourcelink = False
html_last_updated_fmt = None

# -- convlab_docs --------------------------------------------------------------------
# Notebooks shown as pages: copied from notebooks/ (or $CONVLAB_DOCS_NOTEBOOKS) into
# docs/chapter/ (git-ignored) before the sources are read.
# Every chapter notebook is a page; backends.ipynb is the tour of the backend flag, not a chapter page.
convlab_notebook_dir = os.environ.get("CONVLAB_DOCS_NOTEBOOKS") or str(ROOT / "notebooks")
convlab_notebooks = {
    f"chapter/{path.stem}": path.name
    for path in sorted(Path(convlab_notebook_dir).glob("*.ipynb"))
    if path.stem != "backends"
}
