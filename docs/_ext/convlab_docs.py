"""The Sphinx extension behind convlab's site: what the pages show about convlab is made by running convlab.

Directives
----------
``backend-tabs``
    One tab per backend convlab has an adapter for. Each tab quotes the
    adapter methods named in ``:methods:`` straight from the adapter's source
    (with the helpers of the same module they call, and the convlab objects
    they import), then runs the directive's content under
    ``cl.use_backend(name)`` and shows what it printed. A backend whose
    framework is not installed where the site is built says so instead.
``convlab-parity``
    Runs :func:`convlab.parity.run_parity` and shows its table (and the rows
    of ``convlab parity --json``).
``convlab-api``
    autodoc entries for every name in ``convlab.__all__``, grouped, plus the
    public modules and the backend protocol.
``convlab-backends``
    The table of known backends: aliases, adapter file, install extra, and
    whether (and which version) is installed here.

Notebooks
---------
The ``convlab_notebooks`` setting maps page names to notebook files in
``convlab_notebook_dir``; they are copied into the source tree before the
sources are read, so that MyST-NB executes and renders them. A missing
notebook becomes a placeholder page and a warning (an error with ``-W``).
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import filecmp
import inspect
import io
import json
import platform
import shutil
import sys
import textwrap
import traceback
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import CodeType
from typing import Any, ClassVar

from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


# -- helpers ---------------------------------------------------------------------------


def ordered_backends() -> list[str]:
    """Every backend convlab has an adapter for (installed or not), in tab order."""
    from convlab.core.registry import backend_names

    return backend_names()  # the registry's order: the reference first


def try_load(name: str) -> Any | None:
    """The loaded backend, or ``None`` when its framework does not import here."""
    from convlab.core.registry import load_backend
    from convlab.errors import BackendLoadOrderError, BackendNotInstalledError

    try:
        return load_backend(name)
    except (BackendNotInstalledError, BackendLoadOrderError):
        return None


def indent(lines: list[str], by: int) -> list[str]:
    pad = " " * by
    return [pad + line if line.strip() else "" for line in lines]


def code_block(code: str, language: str, caption: str | None = None, lineno_start: int | None = None) -> list[str]:
    """An rST ``code-block`` holding ``code`` verbatim."""
    lines = [f".. code-block:: {language}"]
    if caption:
        lines.append(f"   :caption: {caption}")
    if lineno_start is not None:
        lines.append(f"   :lineno-start: {lineno_start}")
    lines.append("")
    body = code.rstrip("\n").expandtabs().splitlines() or [""]
    lines += indent(body, 3)
    lines.append("")
    return lines


def relative(path: str | None) -> str:
    if path is None:
        return "?"
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path


def _code_names(code: CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _code_names(const)


def _local_convlab_imports(source: str) -> Iterator[Any]:
    """Objects a function imports from convlab inside its body (``from convlab.layers import X``)."""
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("convlab"):
            module = sys.modules.get(node.module) or __import__(node.module, fromlist=["_"])
            for alias in node.names:
                obj = getattr(module, alias.name, None)
                if obj is not None:
                    yield obj


class Quote:
    """One piece of source quoted in a tab."""

    def __init__(self, obj: Any, title: str, note: str = "") -> None:
        lines, start = inspect.getsourcelines(obj)
        self.obj = obj
        self.title = title
        self.note = note
        self.code = textwrap.dedent("".join(lines))
        self.start = start
        self.path = relative(inspect.getsourcefile(obj))

    def caption(self) -> str:
        return f"{self.title}{self.note} — {self.path}, line {self.start}"


def _unwrapped(obj: Any) -> Any:
    """``obj`` without decorators (``functools.cache``, ``jax.jit``, ``tf.function``, properties)."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    try:
        return inspect.unwrap(obj) if callable(obj) else obj
    except ValueError:  # a wrapper cycle
        return obj


def quotes_for(cls: type, methods: list[str], instance: Any = None) -> list[Quote]:
    """The source of ``cls``'s ``methods`` (or the base class's, when inherited) and of what they call.

    Besides each method, quotes what it refers to, transitively: the adapter's
    own helper methods (those the :class:`Backend` protocol does not define),
    the functions and classes of the adapter's module, and the convlab objects
    it imports in its body — so that a tab shows all the framework code that
    the step runs. Given the loaded adapter ``instance``, functions it stores
    as attributes when its framework is imported (``self._native =
    tf.function(_conv)``) are found too. Helpers are followed within the
    adapter's package only: its module and the modules beside it (MXNet's
    tracing, TensorFlow's kernels).
    """
    from convlab.backends.base import Backend

    quotes: list[Quote] = []
    seen: set[int] = set()
    package = cls.__module__.rpartition(".")[0] or cls.__module__

    def quote(obj: Any, title: str, note: str = "") -> None:
        seen.add(id(obj))
        quotes.append(Quote(obj, title, note))
        if inspect.isfunction(obj) and (obj.__module__ == cls.__module__ or obj.__module__.startswith(f"{package}.")):
            add_helpers(obj)

    def add_helpers(func: Any) -> None:
        module = sys.modules[func.__module__]
        code = getattr(func, "__code__", None)
        names = list(dict.fromkeys(_code_names(code))) if code is not None else []
        for name in names:  # the adapter's own helper methods, called as self.<name>
            owner = next((k for k in cls.__mro__ if name in vars(k)), None)
            if owner is None or owner is object or name in vars(Backend) or name.startswith("__"):
                continue
            method = _unwrapped(vars(owner)[name])
            if inspect.isfunction(method) and id(method) not in seen:
                quote(method, f"{cls.__name__}.{name}")
        candidates = [_unwrapped(module.__dict__.get(name)) for name in names]
        if instance is not None:  # set up when the adapter is made, e.g. self._native = tf.function(_conv)
            candidates += [_unwrapped(vars(instance)[name]) for name in names if name in vars(instance)]
        with contextlib.suppress(OSError, TypeError, SyntaxError):
            candidates += [_unwrapped(obj) for obj in _local_convlab_imports(inspect.getsource(func))]
        for obj in candidates:
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue
            if not getattr(obj, "__module__", "").startswith("convlab"):
                continue
            if obj is cls or (inspect.isclass(obj) and issubclass(obj, Backend)):
                continue
            if obj.__module__ != module.__name__ and obj.__module__ == "convlab.backends.base":
                continue
            quote(obj, f"{obj.__module__}.{obj.__qualname__}")

    for method in methods:
        owner = next((k for k in cls.__mro__ if method in vars(k)), None)
        if owner is None:
            raise AttributeError(f"{cls.__name__} has no method {method!r}")
        note = "" if owner is cls else f" (inherited from {owner.__name__})"
        quote(_unwrapped(vars(owner)[method]), f"{cls.__name__}.{method}", note)
    return quotes


def run_snippet(code: str, backend: str) -> tuple[str, str | None]:
    """Run ``code`` with ``backend`` active; return what it printed and the traceback, if it raised."""
    import numpy as np

    import convlab as cl

    namespace: dict[str, Any] = {"cl": cl, "np": np, "__name__": "__convlab_docs__"}
    out = io.StringIO()
    error = None
    with contextlib.redirect_stdout(out), cl.use_backend(backend):
        try:
            exec(compile(code, f"<backend-tabs {backend}>", "exec"), namespace)
        except Exception:
            error = traceback.format_exc()
    return out.getvalue(), error


# -- notebooks -----------------------------------------------------------------------------

_PLACEHOLDER = {
    "cells": [
        {
            "cell_type": "markdown",
            "id": "placeholder",
            "metadata": {},
            "source": "# {title}\n\nThe notebook `{path}` was not found when this site was built.\n",
        }
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def sync_notebooks(app: Any, config: Any) -> None:
    """Copy the configured notebooks into the source tree (only when changed)."""
    source_dir = Path(config.convlab_notebook_dir)
    for docname, filename in config.convlab_notebooks.items():
        target = Path(app.srcdir) / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        source = source_dir / filename
        if source.is_file():
            if not target.is_file() or not filecmp.cmp(source, target, shallow=False):
                shutil.copyfile(source, target)
            continue
        logger.warning(
            "convlab_docs: notebook %s not found; page %r shows a placeholder", source, docname, type="convlab"
        )
        placeholder = json.loads(json.dumps(_PLACEHOLDER))
        cell = placeholder["cells"][0]
        cell["source"] = cell["source"].format(title=Path(filename).stem, path=relative(str(source)))
        target.write_text(json.dumps(placeholder, indent=1))


# -- directives ------------------------------------------------------------------------------


class GeneratedDirective(SphinxDirective):
    """A directive that writes reStructuredText and parses it in place."""

    def parse(self, lines: list[str]) -> list[Any]:
        from docutils import nodes

        if _in_markdown(self.state):
            # MyST's nested parse reads Markdown: hand it the rST in an eval-rst fence.
            fence = "`" * max(3, 1 + max((len(r) for r in _backtick_runs(lines)), default=0))
            lines = [f"{fence}{{eval-rst}}", *lines, fence]
        source, _ = self.get_source_info()
        content = StringList(lines, source=f"{source} (generated by {self.name})")
        container = nodes.container()
        nested_parse_with_titles(self.state, content, container)
        return container.children


def _in_markdown(state: Any) -> bool:
    try:
        from myst_parser.mocking import MockState
    except ImportError:  # pragma: no cover - myst-nb depends on myst-parser
        return False
    return isinstance(state, MockState)


def _backtick_runs(lines: list[str]) -> Iterator[str]:
    import re

    for line in lines:
        yield from re.findall(r"`+", line)


class BackendTabs(GeneratedDirective):
    """``.. backend-tabs::`` — one tab per backend: the adapter's code and what the content printed."""

    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {
        "methods": directives.unchanged,  # adapter methods to quote, space or comma separated
        "snippet": lambda arg: directives.choice(arg, ("above", "tab", "hidden")),  # where the content is shown
    }

    def run(self) -> list[Any]:
        from convlab.core.registry import specs

        methods = self.options.get("methods", "").replace(",", " ").split()
        snippet_mode = self.options.get("snippet", "above")
        snippet = "\n".join(self.content)
        lines: list[str] = []
        if snippet.strip() and snippet_mode == "above":
            lines += code_block(snippet, "python", caption="the same convlab code, run on every backend")
        lines += [".. tab-set::", "   :sync-group: backend", "   :class: convlab-backend-tabs", ""]
        for name in ordered_backends():
            backend = try_load(name)  # an adapter imports its framework: without it there is no code to quote
            body: list[str] = []
            code = snippet.replace("{backend}", name)
            if snippet.strip() and snippet_mode == "tab":
                body += code_block(code, "python")
            if backend is not None:
                cls = type(backend)
                self.env.note_dependency(inspect.getsourcefile(cls))
                for quote in quotes_for(cls, methods, backend):
                    self.env.note_dependency(str(ROOT / quote.path))
                    body += code_block(quote.code, "python", caption=quote.caption(), lineno_start=quote.start)
            body += self.output(name, code, specs()[name].hint) if snippet.strip() or backend is None else []
            lines += [f"   .. tab-item:: {name}", f"      :sync: {name}", ""]
            lines += indent(body, 6)
        return self.parse(lines)

    def output(self, name: str, code: str, hint: str) -> list[str]:
        backend = try_load(name)
        if backend is None:
            return [
                ".. admonition:: not installed",
                "   :class: warning convlab-not-installed",
                "",
                f"   {name} is not installed where this site was built, so this tab shows",
                f"   no output. Install it with ``{hint}``.",
                "",
            ]
        printed, error = run_snippet(code, name)
        lines = [f"Printed when this site was built, by {name} {backend.version()}:", ""]
        if error is not None:
            logger.warning(
                "backend-tabs: the snippet raised on the %s backend:\n%s", name, error, location=self.get_location()
            )
            return lines + code_block(printed + error, "text")
        return lines + code_block(printed or "(nothing printed)", "text")


class ParityReport(GeneratedDirective):
    """``.. convlab-parity::`` — the parity table of every installed backend, computed now."""

    has_content = False

    def run(self) -> list[Any]:
        from convlab.parity import format_table, run_parity

        rows = run_parity(ordered_backends())
        data = [asdict(row) for row in rows]
        self.env.convlab_parity_json = data  # written next to the page by write_parity_json
        names = list(dict.fromkeys(r.backend for r in rows))
        checks = list(dict.fromkeys(r.check for r in rows))
        cells = {(r.backend, r.check): r for r in rows}
        failed = [f"{r.backend}: {r.check}" for r in rows if not r.passed]
        if failed:
            logger.warning("convlab-parity: checks failed: %s", ", ".join(failed), location=self.get_location())

        stamp, versions = built_when(names)
        lines = [
            f"Computed when this site was built ({stamp}, Python {platform.python_version()}, {versions}).",
            "",
            *list_table_head("convlab-parity", ["check", "tolerance", *names]),
        ]
        for check in checks:
            first = next(r for r in rows if r.check == check)
            lines += [f"   * - {check}", f"     - {first.tolerance:.0e}"]
            for name in names:
                r = cells[(name, check)]
                worst = r.vs_numpy if r.vs_others is None else max(r.vs_numpy, r.vs_others)
                badge = ":bdg-success:`ok`" if r.passed else ":bdg-danger:`FAIL`"
                lines.append(f"     - {worst:.1e} {badge}")
        lines += ["", "The same table as ``convlab parity`` prints it:", ""]
        lines += code_block(format_table(rows), "text")
        lines += [
            ".. dropdown:: The rows as ``convlab parity --json`` writes them",
            "",
            "   Also saved next to this page as `parity.json <parity.json>`_.",
            "",
        ]
        lines += indent(code_block(json.dumps(data, indent=1), "json"), 3)
        return self.parse(lines)


def built_when(names: list[str]) -> tuple[str, str]:
    """The build's time (UTC) and the versions of the backends ``names``, for a generated table's caption."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return stamp, ", ".join(f"{n} {try_load(n).version()}" for n in names)


def list_table_head(css_class: str | None, headers: list[str]) -> list[str]:
    """The opening lines of an RST ``list-table`` (of that CSS class, if any) with a header row of ``headers``."""
    lines = [".. list-table::", "   :header-rows: 1", *([f"   :class: {css_class}"] if css_class else []), ""]
    return lines + [f"   * - {headers[0]}"] + [f"     - {header}" for header in headers[1:]]


class ShapeReport(GeneratedDirective):
    """``.. convlab-shape-report::`` — each book tab of 7.3 and 7.5 run beside convlab, computed now."""

    has_content = False

    def run(self) -> list[Any]:
        from convlab.backends.reference import NOT_PROVIDED
        from convlab.chapter.disagreements import format_shape_report, shape_report

        rows = shape_report(ordered_backends())
        names = sorted({name for row in rows for name in (*row.tabs, *row.not_provided)})
        stamp, versions = built_when(names)
        lines = [
            f"Computed when this site was built ({stamp}, {versions}). A cell says ``same`` where the",
            "tab gives convlab's shape (and, for pooling, its values); otherwise it shows what the tab gives.",
            "",
            *list_table_head("convlab-shape-report", ["example", "input", "convlab", *names]),
        ]
        for row in rows:
            shown = str(row.convlab.shape[2:]) if not row.values_count else str(row.convlab[0, -1].tolist())
            lines += [f"   * - {row.example}", f"     - {row.input}", f"     - ``{shown}``"]
            for name in names:
                tab = row.tabs.get(name)
                if tab is None:
                    missing = NOT_PROVIDED if name in row.not_provided else "-"
                    lines.append("     - " + ("error" if name in row.errors else missing))
                elif row.agrees(name):
                    lines.append("     - :bdg-success:`same`")
                else:
                    got = str(tab.output.shape[2:]) if not row.values_count else str(tab.output[0, -1].tolist())
                    lines.append(f"     - :bdg-warning:`differs` ``{got}``")
        lines += ["", "What each tab runs, and why it differs where it does:", ""]
        seen = set()
        for row in rows:
            for name, tab in row.tabs.items():
                if (name, row.example) in seen:
                    continue
                seen.add((name, row.example))
                note = f" — {tab.note}" if tab.note and not row.agrees(name) else ""
                lines.append(f"- **{name}**, {row.example}: ``{tab.code}``{note}")
        lines += ["", "The same report as ``cl.format_shape_report(cl.shape_report())`` prints it:", ""]
        lines += code_block(format_shape_report(rows), "text")
        return self.parse(lines)


API_GROUPS = [
    ("Choosing a backend", ["set_backend", "use_backend", "get_backend", "available_backends", "backend_names"]),
    ("Backends and their registry", ["backend_info", "register_backend", "unregister_backend", "BackendSpec"]),
    ("Tensors", ["tensor", "to_numpy"]),
    ("Cross-correlation and convolution", ["corr2d", "conv2d", "corr2d_matrix", "receptive_field"]),
    ("Padding and stride (7.3)", ["pad", "conv_output_shape", "insert_zeros", "conv_transpose2d"]),
    (
        "Channels (7.4)",
        [
            "corr2d_multi_in",
            "corr2d_multi_in_out",
            "corr2d_multi_in_out_1x1",
            "conv_cost",
            "ConvCost",
            "compose_kernels",
        ],
    ),
    (
        "Pooling (7.5)",
        ["pool2d", "pool_cost", "PoolCost", "avg_pool2d_by_conv", "max_pool2d_by_relu", "softmax_pool2d"],
    ),
    ("The layer and training", ["Conv2D", "train_kernel", "TrainResult", "max_stable_lr"]),
    ("Layers as framework modules", ["nn", "parameters", "state", "relu", "concat"]),
    ("LeNet (7.6) and modern CNNs (8)", ["models", "layer_summary", "train_classifier", "ClassifierResult"]),
    ("Checking gradients", ["gradcheck", "GradcheckResult", "GradcheckError"]),
    (
        "Where the book's tabs disagree",
        [
            "shape_report",
            "format_shape_report",
            "ShapeReportRow",
            "modern_report",
            "format_modern_report",
            "ModernReportRow",
        ],
    ),
    ("Exercises", ["autograd_exercise"]),
    (
        "Errors",
        [
            "BackendNotInstalledError",
            "BackendLoadOrderError",
            "DivergenceError",
            "DataNotFoundError",
            "DataCorruptError",
        ],
    ),
    ("The chapter's data and kernels", ["data", "kernels"]),
]

API_RETURN_TYPES = {"autograd_exercise": ["convlab.chapter.conv_layer.AutogradOutcome"]}
"""Classes outside ``convlab.__all__`` that public functions return, documented beside them."""


class ApiReference(GeneratedDirective):
    """``.. convlab-api::`` — autodoc entries for every public name, so the reference cannot miss one."""

    has_content = False

    def run(self) -> list[Any]:
        import importlib.util
        import types

        import convlab

        public = list(convlab.__all__)
        grouped = {name for _, names in API_GROUPS for name in names}
        groups = [(title, [n for n in names if n in public]) for title, names in API_GROUPS]
        groups.append(("Other", [n for n in public if n not in grouped]))
        lines: list[str] = []
        for title, names in groups:
            if not names:
                continue
            lines += [title, "-" * len(title), ""]
            for name in names:
                obj = getattr(convlab, name)
                if isinstance(obj, types.ModuleType):
                    lines += [f".. automodule:: {obj.__name__}", "   :members:", ""]
                elif inspect.isclass(obj):
                    lines += [f".. autoclass:: convlab.{name}", "   :members:", ""]
                else:
                    lines += [f".. autofunction:: convlab.{name}", ""]
                for extra in API_RETURN_TYPES.get(name, ()):  # classes public functions return
                    lines += [f".. autoclass:: {extra}", "   :members:", ""]
        if importlib.util.find_spec("convlab.plot") is not None:
            lines += ["Figures", "-------", "", ".. automodule:: convlab.plot", "   :members:", ""]
        lines += [
            "The backend protocol",
            "--------------------",
            "",
            ".. automodule:: convlab.backends.base",
            "   :members: Backend, Loss",
            "",
            ".. automodule:: convlab.backends.reference",
            "   :members: ReferenceModule, BookTab, BOOK_EXAMPLES, load_reference, reference_function",
            "",
        ]
        return self.parse(lines)


class BackendTable(GeneratedDirective):
    """``.. convlab-backends::`` — every known backend, and whether it is installed here."""

    has_content = False

    def run(self) -> list[Any]:
        from convlab.core.registry import specs

        headers = ["backend", "aliases", "adapter", "install with", "installed where this site was built"]
        lines = list_table_head(None, headers)
        for name in ordered_backends():
            spec = specs()[name]
            backend = try_load(name)
            install = f"``{spec.hint}``" if spec.extra else "built in"
            module, _, class_name = spec.adapter.partition(":")
            lines += [
                f"   * - ``{name}``",
                f"     - {', '.join(f'``{a}``' for a in spec.aliases) or '—'}",
                f"     - ``{module.replace('.', '/')}.py`` (``{class_name}``)",
                f"     - {install}",
                f"     - {'yes, ' + backend.version() if backend else 'no'}",
            ]
        return self.parse(lines)


# -- math as MathML ------------------------------------------------------------------------------
# Browsers render MathML natively, so formulas need neither a script from a CDN (MathJax) nor LaTeX
# at build time (imgmath): they show offline, in the headless check too. Docutils converts the TeX.

_TEX_ALIASES = {r"\dots": r"\ldots", r"\dotsc": r"\ldots", r"\dotsb": r"\cdots"}


def _mathml(self: Any, node: Any, latex: str, block: bool) -> str:
    import re

    from docutils.utils.math import MathError
    from docutils.utils.math.latex2mathml import tex2mathml

    tex = re.sub(r"\\[a-zA-Z]+", lambda m: _TEX_ALIASES.get(m.group(0), m.group(0)), latex.strip())
    try:
        return tex2mathml(tex, as_block=block)
    except MathError as exc:
        logger.warning("math: cannot convert %r to MathML: %s", latex, exc, location=node)
        return f'<code class="math">{self.encode(latex)}</code>'


def visit_math(self: Any, node: Any) -> None:
    from docutils import nodes

    self.body.append(f'<span class="math notranslate">{_mathml(self, node, node.astext(), False)}</span>')
    raise nodes.SkipNode


def visit_displaymath(self: Any, node: Any) -> None:
    from docutils import nodes

    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node.get("number"):
        self.body.append(f'<span class="eqno">({node["number"]})</span>')
    # Sphinx math_block nodes carry "latex"; those MyST makes from $$ ... $$ in notebooks hold the text only.
    self.body.append(_mathml(self, node, node.get("latex", node.astext()), True) + "</div>\n")
    raise nodes.SkipNode


def write_parity_json(app: Any, exception: Exception | None) -> None:
    data = getattr(app.env, "convlab_parity_json", None)
    if exception is None and data is not None and app.builder.format == "html":
        Path(app.outdir, "parity.json").write_text(json.dumps(data, indent=1) + "\n")


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("convlab_notebooks", {}, "env")
    app.add_config_value("convlab_notebook_dir", str(ROOT / "notebooks"), "env")
    app.connect("config-inited", sync_notebooks)
    app.connect("build-finished", write_parity_json)
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_displaymath, None))
    app.add_directive("backend-tabs", BackendTabs)
    app.add_directive("convlab-parity", ParityReport)
    app.add_directive("convlab-shape-report", ShapeReport)
    app.add_directive("convlab-api", ApiReference)
    app.add_directive("convlab-backends", BackendTable)
    # The directives run every backend in this process: keep reading serial.
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
