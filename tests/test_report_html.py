"""The HTML report: built from the records alone, every image and video resolves, checked in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import time
from html.parser import HTMLParser

import pytest
from harness_fixtures import toy_suite

from safeadapt_bench.harness.report import build_report
from safeadapt_bench.harness.suites import TaskSpec
from safeadapt_bench.harness.sweep import run_sweep

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    """A finished toy sweep (2 agents x 1 task x 1 seed) whose report was built from a copy of its records."""
    root = tmp_path_factory.mktemp("html")
    run_sweep(toy_suite(seeds=(0,), tasks=(TaskSpec("Lift", obs_mode="state"),)), str(root / "run"),
              progress=False)
    # built from the records alone: only the manifest, the records and the files they list travel
    shutil.copytree(root / "run", root / "res", ignore=shutil.ignore_patterns("errors"))
    shutil.rmtree(root / "run")
    return os.path.join(build_report(str(root / "res"), reps=50), "index.html")


class _Sources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("img", "video", "a") and dict(attrs).get("src" if tag != "a" else "href"):
            self.found.append((tag, dict(attrs)["src" if tag != "a" else "href"]))


def test_report_page_lists_every_figure_and_a_video_per_agent_and_split(report):
    html = open(report).read()
    parser = _Sources()
    parser.feed(html)
    srcs = {tag: [s for t, s in parser.found if t == tag] for tag in ("img", "video", "a")}
    figures = sorted(n for n in os.listdir(os.path.join(os.path.dirname(report), "figures")) if n.endswith(".png"))
    assert sorted(os.path.basename(s) for s in srcs["img"]) == figures and len(figures) >= 6
    for src in srcs["img"] + srcs["video"] + [s for s in srcs["a"] if not s.startswith("#")]:
        assert os.path.isfile(os.path.join(os.path.dirname(report), src)), src
    videos = {re.search(r"videos/Lift-Panda__(.+)__seed0/(\w+)-front\.mp4", s).groups() for s in srcs["video"]}
    assert videos == {(a, s) for a in ("random", "shielded-random") for s in ("train", "heldout")}
    for section in ('id="leaderboard"', 'id="experts"', 'id="settings-table"', 'id="provenance-table"'):
        assert section in html
    assert "adapt_env_steps" in html and "packages.gymnasium" in html  # settings and provenance
    assert oct(os.stat(report).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    assert not missing, f"{missing} missing: run `bash .ci/setup` (installs Debian's chromium and chromium-driver)"
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


MEDIA_STATE = """return {
  ready: document.readyState,
  images: [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
  videos: [...document.querySelectorAll('video')].map(v => [v.getAttribute('src'),
           v.readyState >= 1 && !v.error && v.videoWidth > 0]),
  table: document.getElementById('leaderboard').getBoundingClientRect().toJSON(),
  dpr: window.devicePixelRatio, height: window.innerHeight };"""


def test_headless_chromium_loads_every_image_and_video_and_shows_the_leaderboard(report, tmp_path):
    import numpy as np
    from PIL import Image

    driver = _browser()
    try:
        driver.get("file://" + report)
        deadline = time.time() + 30
        state = driver.execute_script(MEDIA_STATE)
        while time.time() < deadline and not (
            state["ready"] == "complete" and all(ok for _, ok in state["images"] + state["videos"])
        ):
            time.sleep(0.25)
            state = driver.execute_script(MEDIA_STATE)
        assert driver.title.startswith("safeadapt-bench report")
        assert [s for s, ok in state["images"] if not ok] == [] and len(state["images"]) >= 6
        assert [s for s, ok in state["videos"] if not ok] == [] and len(state["videos"]) == 4
        header = driver.find_element("id", "leaderboard").text
        assert "random" in header and "shielded-random" in header and "success_train" in header
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    table, dpr = state["table"], state["dpr"]
    assert 0 <= table["top"] < state["height"] / 2  # the leaderboard is on the first screen
    img = Image.open(shot).convert("L")
    box = [int(v * dpr) for v in (table["left"], table["top"], table["right"], min(table["bottom"], state["height"]))]
    pixels = np.asarray(img.crop(box))
    dark = float(np.mean(pixels < 100))
    assert 0.01 < dark < 0.5 and pixels.max() > 230  # text on a light background: the table is drawn
