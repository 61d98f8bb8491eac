"""The documentation site: built with the documented command, then checked as files and as a browser shows it.

Select these tests with ``pytest -m docs`` (or leave them out with ``-m "not docs"``). The
site is built once per session with ``bash scripts/build-docs.sh`` into a temporary
directory (about a minute: the notebooks run on NumPy, every installed backend runs
the side-by-side snippets and the parity checks once). ``CONVLAB_DOCS_SITE=DIR``
checks a site built earlier instead. The pages are rendered by headless Chromium
(Debian's ``chromium`` package) when it is installed; the screenshots land in
``$CONVLAB_DOCS_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations

import html
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import convlab as cl
from convlab.core.registry import backend_names, load_backend

pytestmark = [pytest.mark.docs, pytest.mark.xdist_group("docs")]  # one worker builds the site once

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "index",
    "getting-started",
    *(f"chapter/{path.stem}" for path in sorted((ROOT / "notebooks").glob("*.ipynb")) if path.stem != "backends"),
    "side-by-side",
    "parity",
    "disagreements",
    "benchmark",
    "api",
    "architecture",
]
STEPS = 7
"""Tab sets on the side-by-side page: one per step of the chapter."""
QUOTED = ["corr2d_loop", "corr2d_vectorized", "conv2d", "module", "builtin_conv2d", "value_and_grad"]
"""Adapter methods whose source the side-by-side page must quote, for every backend."""
DOC_PACKAGES = ("sphinx", "myst_nb", "sphinx_design", "pydata_sphinx_theme")
TAB_LABEL = re.compile(r'<label[^>]*class="sd-tab-label[^"]*"[^>]*>\s*(.*?)\s*</label>', re.S)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: ``bash scripts/build-docs.sh OUT``, once per session."""
    if os.environ.get("CONVLAB_DOCS_SITE"):
        return Path(os.environ["CONVLAB_DOCS_SITE"])
    missing = [name for name in DOC_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        message = f"the docs packages {', '.join(missing)} are not installed (bash scripts/dev.sh setup)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("docs") / "html"
    env = {**os.environ, "PYTHON": sys.executable, "TF_CPP_MIN_LOG_LEVEL": "3"}
    build = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-docs.sh"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if build.returncode != 0:
        pytest.fail(f"the docs build failed (exit {build.returncode}):\n{build.stdout[-6000:]}\n{build.stderr[-6000:]}")
    return out


def page(site: Path, name: str) -> str:
    return (site / f"{name}.html").read_text(encoding="utf-8")


def tab_labels(markup: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", label)).strip() for label in TAB_LABEL.findall(markup)]


def text_lines(markup: str) -> set[str]:
    """The page's text, line by line, without tags or line numbers."""
    markup = re.sub(r'<span class="linenos">.*?</span>', "", markup)
    text = html.unescape(re.sub(r"<[^>]+>", "", markup))
    return {line.strip() for line in text.splitlines() if line.strip()}


def installed() -> list[str]:
    return cl.available_backends()


# -- the files --------------------------------------------------------------------------------


def test_every_page_exists(site: Path) -> None:
    missing = [name for name in PAGES if not (site / f"{name}.html").is_file()]
    assert not missing, f"pages missing from {site}: {missing}"
    for name in PAGES:
        assert "<title>" in page(site, name)


def test_benchmark_page_explains_the_three_verdicts(site: Path) -> None:
    text = "\n".join(text_lines(page(site, "benchmark")))
    for words in ("PASS", "FAIL", "WITHIN NOISE", "95% interval", "spread", "compile time", "--budget"):
        assert words in text, f"the benchmark page does not mention {words!r}"


def test_notebook_pages_are_the_executed_notebooks(site: Path) -> None:
    for name in ("chapter/conv-layer", "chapter/exercises"):
        markup = page(site, name)
        assert "was not found when this site was built" not in markup, f"{name}: the notebook was missing"
        assert "cell_output" in markup, f"{name}: no executed output"
    chapter = text_lines(page(site, "chapter/conv-layer"))
    assert any("[[19. 25.]" in line for line in chapter), "the first figure's result is not on the chapter page"
    assert any("37. 43." in line for line in chapter)


def test_side_by_side_has_a_tab_per_backend(site: Path) -> None:
    markup = page(site, "side-by-side")
    labels = tab_labels(markup)
    known = backend_names()
    assert set(known) <= set(labels), f"backends without a tab: {set(known) - set(labels)}"
    for name in known:  # one tab per backend in every step's tab set
        assert labels.count(name) == STEPS, f"{name}: {labels.count(name)} tabs, expected {STEPS}"
    for name in installed():
        version = cl.core.registry.load_backend(name).version()
        assert f"Printed when this site was built, by {name} {version}:" in markup, f"{name}: no output"
    for name in set(known) - set(installed()):
        assert f"{name} is not installed where this site was built" in markup
    text = "\n".join(text_lines(markup))
    assert 'File "<backend-tabs' not in text, "a snippet raised while the site was built"


def test_side_by_side_quotes_the_adapters_source(site: Path) -> None:
    lines = text_lines(page(site, "side-by-side"))
    for cls in (type(load_backend(name)) for name in installed()):
        for method in QUOTED:
            owner = next(k for k in cls.__mro__ if method in vars(k))
            source = textwrap.dedent(inspect.getsource(vars(owner)[method]))
            absent = [line.strip() for line in source.splitlines() if line.strip() and line.strip() not in lines]
            assert not absent, f"{cls.__name__}.{method}: lines not on the page: {absent[:3]}"
            assert f"{cls.__name__}.{method}" in "\n".join(lines)


def test_home_page_has_a_tab_per_backend(site: Path) -> None:
    markup = page(site, "index")
    assert set(backend_names()) <= set(tab_labels(markup))
    for name in installed():
        assert f"from convlab import {name} as cl" in html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_parity_page_shows_every_installed_backend(site: Path) -> None:
    rows = json.loads((site / "parity.json").read_text())
    assert {row["backend"] for row in rows} == set(installed())
    assert all(row["passed"] for row in rows)
    markup = page(site, "parity")
    for name in installed():
        assert f"<p>{name}</p>" in markup or f">{name}</th>" in markup, f"{name}: no column"
    assert "FAIL" not in re.sub(r"<[^>]+>", "", markup)


def test_disagreements_page_runs_every_installed_tab(site: Path) -> None:
    text = " ".join(text_lines(page(site, "disagreements")))
    with_tabs = [name for name in installed() if name != "numpy"]  # NumPy has no book tab
    for name in with_tabs:
        assert f"{name}, max-pool 3, padding 1, stride 2:" in text, f"{name}: its tab is not on the page"
    assert "conv (3, 5), padding (0, 1), stride (3, 4)" in text and "same" in text
    if "tensorflow" in with_tabs:
        assert "(2, 1)" in text  # the TensorFlow tab's shape where the others print (2, 2)


def test_api_reference_lists_every_public_name(site: Path) -> None:
    markup = page(site, "api")
    missing = []
    for name in cl.__all__:
        obj = getattr(cl, name)
        anchor = f'id="module-{obj.__name__}"' if inspect.ismodule(obj) else f'id="convlab.{name}"'
        if anchor not in markup:
            missing.append(name)
    assert not missing, f"public names missing from the API reference: {missing}"
    assert 'id="convlab.backends.base.Backend"' in markup
    if importlib.util.find_spec("convlab.plot") is not None:
        assert 'id="module-convlab.plot"' in markup


def test_architecture_diagram_is_rendered(site: Path) -> None:
    markup = page(site, "architecture")
    images = re.findall(r'<(?:img|object)[^>]+(?:src|data)="([^"]+\.svg)"', markup)
    assert images, "no diagram"
    svg = (site / images[0]).read_text()
    assert "<svg" in svg and "registry" in svg


# -- in a browser ---------------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("chromium is not installed (Debian: apt-get install chromium)")


def render(site: Path, name: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a page (no network: the site must render offline)."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,2000",
        "--virtual-time-budget=5000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    url = (site / f"{name}.html").resolve().as_uri()
    return subprocess.run([chromium(), *flags, *extra, url], capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("name", ["index", "side-by-side"])
def test_browser_shows_the_tab_labels(site: Path, name: str, tmp_path: Path) -> None:
    dom = render(site, name, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    labels = tab_labels(dom.stdout)
    assert set(backend_names()) <= set(labels), f"{name}: rendered tab labels {sorted(set(labels))}"
    assert "sd-tab-set" in dom.stdout
    screenshots = Path(os.environ.get("CONVLAB_DOCS_SCREENSHOTS") or tmp_path)
    screenshots.mkdir(parents=True, exist_ok=True)
    png = screenshots / f"{name}.png"
    shot = render(site, name, tmp_path, f"--screenshot={png}")
    assert shot.returncode == 0, shot.stderr[-3000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, "blank screenshot"
