"""The HTML report (stabilization_tools.report) renders in headless Chromium: a headline for
the latest version, every chart, a runs table that fits a 1280 px window — with 4
versions and with a long history of 60."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import rendered_images

from stabilization_tools.report import CHARTS, render_report

TOLERANCE = 1e-5


def published_versions(count: int = 4):
    """Rows as stabilization_runs and stabilization_transforms hold them, and drift alerts."""
    rng = np.random.default_rng(0)
    start = datetime(2026, 9, 1)
    versions = [(start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(count)]
    later = count - 1

    def after_first(values):
        return np.concatenate([[np.nan], values[1:]])

    runs = pd.DataFrame(
        {
            "embedding_version": versions,
            "base_version": [None, *versions[:-1]],
            "align_on": "items",
            "users": 1_000_000,
            "items": 200_000,
            "aligned_ids": after_first(rng.integers(180_000, 195_000, count)),
            "dimension": 64,
            "rank": 64,
            "condition_number": 12.5,
            "procrustes_residual": after_first(rng.uniform(0.1, 0.4, count)),
            "max_dot_product_error": rng.uniform(5e-8, 8e-8, count),
            "user_cosine_raw": after_first(rng.uniform(-0.2, 0.2, count)),
            "user_cosine_stabilized": after_first(rng.uniform(0.88, 0.95, count)),
            "item_cosine_raw": after_first(rng.uniform(-0.2, 0.2, count)),
            "item_cosine_stabilized": after_first(rng.uniform(0.9, 0.97, count)),
            # the last two published out of label order: the report follows publication
            "published_at": [start + timedelta(days=d) for d in range(count)],
        }
    )
    if count >= 2:
        swapped = [later, later - 1]
        runs.loc[swapped[::-1], "published_at"] = runs.loc[swapped, "published_at"].to_numpy()
    spectra = pd.DataFrame(
        {
            "embedding_version": versions,
            "singular_values": [sorted(rng.uniform(1, 50, 64))[::-1] for _ in versions],
        }
    )
    latest = runs.sort_values("published_at")["embedding_version"].iloc[-1]
    alerts = pd.DataFrame(
        {
            "embedding_version": [latest],
            "alert": ["stabilized_cosine"],
            "message": [
                f"drift alert, version {latest}: stabilized cosine to base version x is 0.612"
            ],
        }
    )
    return {"runs": runs, "spectra": spectra, "alerts": alerts, "tolerance": TOLERANCE}


def open_report(browser, tmp_path, frames, name="report"):
    report = tmp_path / f"{name}.html"
    report.write_text(render_report(**frames, title="Nightly retrains"), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(report.as_uri())
    return page


def assert_reads_at_a_glance(page, frames):
    """Headline of the latest version, every chart decoded, nothing wider than the window."""
    runs = frames["runs"].sort_values("published_at")
    latest = runs.iloc[-1]
    headline = page.locator("#headline").inner_text()
    assert latest["embedding_version"] in headline
    assert f"{latest['item_cosine_stabilized']:.3f}" in headline
    assert f"raw {latest['item_cosine_raw']:.3f}" in headline
    assert f"{latest['max_dot_product_error']:.2e}" in headline and "tolerance 1e-05" in headline
    assert "1 raised" in headline and "stabilized cosine to base version x is 0.612" in headline
    images = rendered_images(page)
    assert [image["figure"] for image in images] == list(CHARTS)
    assert all(image["decoded"] and image["width"] >= 800 for image in images), images
    for caption in CHARTS.values():
        assert page.get_by_text(caption, exact=True).count() == 1
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than a 1280 px window"
    table_width = page.evaluate("document.querySelector('table').getBoundingClientRect().right")
    assert table_width <= 1280
    # the runs table: a row per version, newest publication first, with its alerts
    cells = page.locator("table tbody tr td:first-child").all_inner_texts()
    assert cells == runs["embedding_version"].tolist()[::-1]
    assert page.locator("table tbody tr").first.inner_text().endswith("stabilized_cosine")


def test_report_reads_at_a_glance_in_chromium(browser, tmp_path):
    frames = published_versions(4)
    page = open_report(browser, tmp_path, frames)
    assert page.title() == "Nightly retrains"
    assert_reads_at_a_glance(page, frames)
    page.screenshot(path=str(tmp_path / "report_4_versions.png"), full_page=True)
    page.close()


def test_report_of_60_versions_reads_at_a_glance(browser, tmp_path):
    frames = published_versions(60)
    page = open_report(browser, tmp_path, frames)
    assert_reads_at_a_glance(page, frames)
    page.screenshot(path=str(tmp_path / "report_60_versions.png"), full_page=True)
    page.close()


def test_headline_of_a_first_version_and_an_error_over_tolerance(browser, tmp_path):
    frames = published_versions(1)
    frames["runs"].loc[0, "max_dot_product_error"] = 3e-5
    frames["alerts"] = frames["alerts"].iloc[0:0]
    page = open_report(browser, tmp_path, frames)
    headline = page.locator("#headline")
    assert "first version" in headline.inner_text()
    assert "none" in headline.locator(".card.ok").inner_text()  # no drift alert
    error_card = headline.locator(".card.alert")
    assert "3.00e-05" in error_card.inner_text()  # over the tolerance: flagged
    page.close()


def test_report_needs_no_network(tmp_path):
    page = render_report(**published_versions(2))
    assert "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == len(CHARTS)


def test_report_of_nothing_published_says_so():
    frames = published_versions()
    frames["runs"] = frames["runs"].iloc[0:0]
    with pytest.raises(ValueError, match="no version has been published"):
        render_report(**frames)
