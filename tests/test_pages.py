"""Every page of the built book, rendered in Chromium at 1,280 px as a reader sees it (issue 24,
section 4): no table wider than its column, no literal code fence or pair of backticks in the
text, no "(s)" plural, no Python repr in an output; and the book's search finds the notes'
numbers. Reads `_build/html`, which `make test` builds before the suite."""

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
WIDTH = 1280
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
# What a page's reader sees, measured in the browser: tables wider than the article's column,
# the text outside code (fences, backticks, "(s)"), and the outputs that are a Python repr
# (text/plain outputs: a DataFrame or Styler would have been HTML, a print a stream).
MEASURE = """() => {
  const article = document.querySelector("article.bd-article") || document.body;
  const column = article.getBoundingClientRect();
  const wide = [];
  for (const t of article.querySelectorAll("table")) {
    const r = t.getBoundingClientRect();
    if (r.width > 0 && r.right > column.right + 1) {
      const caption = t.querySelector("caption");
      wide.push(`${Math.round(r.width)} px > ${Math.round(column.width)} px: ` +
                (caption ? caption.innerText : t.innerText).slice(0, 60));
    }
  }
  const skip = "pre, code, script, style, .cell_input, .highlight, .MathJax, mjx-container, svg";
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const texts = [];
  let block = null, buffer = "";
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest(skip)) continue;
    const b = n.parentElement.closest("p, li, td, th, caption, figcaption, h1, h2, h3, h4, dd, dt");
    if (b !== block) { if (buffer.trim()) texts.push(buffer); block = b; buffer = ""; }
    buffer += n.textContent;
  }
  if (buffer.trim()) texts.push(buffer);
  const reprs = [...article.querySelectorAll(".cell_output .output.text_plain, .cell_output .output.stream")]
    .map(o => o.innerText);
  return {wide, texts, reprs};
}"""
REPR = re.compile(
    r"dtype: \w+|^Name: |<Figure size|<pandas\.|Styler object|^\s*\[['\"(]|^\s*\{['\"]|"
    r"^array\(|^tensor\(|^PosixPath\(|^\w+\(\w+=",
    re.M,
)
BACKTICKS = re.compile(r"`[^`\n]+`|```")
PLURAL = re.compile(r"\w\(s\)")


def pages() -> list[str]:
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book in {HTML}: run `make book` first (make test does)")
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    return sorted(
        str(p.relative_to(HTML))
        for p in HTML.rglob("*.html")
        if p.name not in skip
        and "_static" not in p.parts
        and "_sources" not in p.parts
        and 'http-equiv="Refresh"' not in p.read_text()[:500]  # index.html: a redirect
    )


def problems(found: dict) -> list[str]:
    """The defects in what MEASURE returned for one page, one line each."""
    out = [f"table wider than its column: {w}" for w in found["wide"]]
    for text in found["texts"]:
        for m in BACKTICKS.finditer(text):
            out.append(f"literal backticks in the text: {m.group(0)[:60]!r}")
        for m in PLURAL.finditer(text):
            out.append(f"'(s)' plural: {text[max(0, m.start() - 30) : m.end() + 10]!r}")
    for text in found["reprs"]:
        if REPR.search(text):
            out.append(f"a Python repr in an output: {text[:80]!r}")
    return out


def test_problems_names_each_defect():
    found = {
        "wide": ["1059 px > 760 px: Table 2"],
        "texts": ["fine text", "no biases. ```", "within 1 epoch(s)", "around `lenet bench` here"],
        "reprs": [
            "epoch 1: 97.1%",
            "0    98.2\nName: accuracy %, dtype: float64",
            "['a', 'b']",
            "Verdict(claim_id='x', verdict='holds')",
        ],
    }
    assert len(problems(found)) == 7
    assert problems({"wide": [], "texts": ["seeds 0, 1 and 2"], "reprs": ["done"]}) == []


@pytest.fixture(scope="module")
def site():
    if shutil.which("chromium") is None:
        pytest.fail("no chromium on PATH: install the Debian package `chromium` (make test does)")
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        yield page, f"http://127.0.0.1:{httpd.server_address[1]}"
        browser.close()
    httpd.shutdown()


@pytest.mark.parametrize("path", pages() if (HTML / "index.html").exists() else ["index.html"])
def test_page_renders_cleanly_at_1280_px(site, path):
    page, base = site
    page.goto(f"{base}/{path}", wait_until="load")
    assert problems(page.evaluate(MEASURE)) == []


@pytest.mark.parametrize(
    "number, where", [("88.23", "chapters/07_optimizers.html"), ("0.95", "chapters/09_paper.html")]
)
def test_search_finds_the_notes_numbers(site, number, where):
    page, base = site
    page.goto(f"{base}/search.html?q={number}", wait_until="load")
    page.wait_for_selector("#search-results ul.search li, #search-results p", timeout=30_000)
    page.wait_for_function(
        "!document.querySelector('#search-results h2') ||"
        " !/Searching/.test(document.querySelector('#search-results h2').innerText)",
        timeout=30_000,
    )
    links = page.eval_on_selector_all("#search-results ul.search li a", "a => a.map(x => x.href)")
    assert any(where in link for link in links), links
