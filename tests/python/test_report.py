"""The HTML report (python_udfs.report) renders in headless Chromium with its charts."""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import rendered_images

from python_udfs.report import CHARTS, render_report


def published_versions(count: int = 4):
    """Rows as stabilization_runs and stabilization_transforms hold them."""
    rng = np.random.default_rng(0)
    versions = [f"2026-11-{day:02d}" for day in range(1, count + 1)]
    runs = pd.DataFrame(
        {
            "embedding_version": versions,
            "base_version": [None, *versions[:-1]],
            "align_on": "items",
            "users": 1000,
            "items": 200,
            "aligned_ids": [None, 190, 195, 188][:count],
            "dimension": 8,
            "rank": 8,
            "condition_number": 12.5,
            "procrustes_residual": [None, 0.2, 0.21, 0.19][:count],
            "max_dot_product_error": rng.uniform(1e-8, 1e-7, count),
            "user_cosine_raw": [None, 0.02, -0.01, 0.05][:count],
            "user_cosine_stabilized": [None, 0.9, 0.91, 0.89][:count],
            "item_cosine_raw": [None, 0.1, 0.0, -0.03][:count],
            "item_cosine_stabilized": [None, 0.97, 0.96, 0.98][:count],
            # published out of label order: the report follows publication
            "published_at": [datetime(2026, 11, 1) + timedelta(days=d) for d in (0, 1, 3, 2)][:count],
        }
    )
    spectra = pd.DataFrame(
        {"embedding_version": versions, "singular_values": [sorted(rng.uniform(1, 50, 8))[::-1] for _ in versions]}
    )
    return runs, spectra


def test_report_shows_every_chart_in_chromium(browser, tmp_path):
    runs, spectra = published_versions()
    report = tmp_path / "report.html"
    report.write_text(render_report(runs, spectra, title="Nightly retrains"), encoding="utf-8")

    page = browser.new_page()
    page.goto(report.as_uri())
    images = rendered_images(page)
    assert sorted(image["figure"] for image in images) == sorted(CHARTS)
    assert all(image["decoded"] and image["width"] >= 400 for image in images), images
    assert page.title() == "Nightly retrains"
    for caption in CHARTS.values():
        assert page.get_by_text(caption, exact=True).count() == 1
    # the runs table, a row per version, in publication order
    cells = page.locator("table tbody tr td:first-child").all_inner_texts()
    assert cells == ["2026-11-01", "2026-11-02", "2026-11-04", "2026-11-03"]
    page.close()


def test_report_needs_no_network(tmp_path):
    runs, spectra = published_versions(2)
    page = render_report(runs, spectra)
    assert "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == len(CHARTS)


def test_report_of_nothing_published_says_so():
    runs, spectra = published_versions()
    with pytest.raises(ValueError, match="no version has been published"):
        render_report(runs.iloc[0:0], spectra)
