"""A self-contained HTML report of the published versions, with charts.

``render_report`` takes the rows of ``stabilization_runs`` and the singular
values of ``stabilization_transforms`` (as pandas frames) and returns one HTML
page: the charts are PNG images embedded as data URIs, so the file can be
mailed, attached to a ticket or opened offline. matplotlib is needed only here.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd

#: chart id → caption; each chart is an <img> inside <figure id=...>
CHARTS = {
    "chart-similarity": (
        "Same-id cosine similarity to the published base version: the new retrain's raw "
        "embeddings (dotted) and its stabilized ones (solid)"
    ),
    "chart-spectrum": "Singular values of the score matrix W·Tᵀ per version",
    "chart-dot-product-error": "Max relative dot-product error per version (sampled pairs)",
}

_RUN_COLUMNS = (
    "embedding_version",
    "base_version",
    "align_on",
    "users",
    "items",
    "aligned_ids",
    "dimension",
    "rank",
    "condition_number",
    "procrustes_residual",
    "max_dot_product_error",
    "user_cosine_raw",
    "user_cosine_stabilized",
    "item_cosine_raw",
    "item_cosine_stabilized",
)


def render_report(
    runs: pd.DataFrame, spectra: pd.DataFrame, title: str = "Embedding stabilization"
) -> str:
    """Return the report as one HTML page.

    Parameters
    ----------
    runs : DataFrame
        Rows of ``stabilization_runs`` (any order; shown by ``published_at``).
    spectra : DataFrame
        ``embedding_version`` and ``singular_values`` (a list per version), e.g.
        the ``items`` rows of ``stabilization_transforms``.
    """
    if runs.empty:
        raise ValueError("stabilization_runs has no rows: no version has been published yet")
    runs = runs.sort_values(["published_at", "embedding_version"]).reset_index(drop=True)
    versions = runs["embedding_version"].astype(str).tolist()
    spectra = spectra.set_index("embedding_version")["singular_values"]
    figures = {
        "chart-similarity": _similarity_chart(runs, versions),
        "chart-spectrum": _spectrum_chart(spectra, versions),
        "chart-dot-product-error": _error_chart(runs, versions),
    }
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(versions)} published versions, "
        + f"{html.escape(versions[0])} to {html.escape(versions[-1])}.</p>",
    ]
    for chart_id, png in figures.items():
        caption = html.escape(CHARTS[chart_id])
        encoded = base64.b64encode(png).decode("ascii")
        body.append(
            f'<figure id="{chart_id}"><img alt="{caption}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    table = runs[[c for c in _RUN_COLUMNS if c in runs.columns]]
    table = table.map(
        lambda value: (
            "–" if pd.isna(value) else f"{value:.4g}" if isinstance(value, float) else value
        )
    )
    body.append("<h2>stabilization_runs</h2>")
    body.append(table.to_html(index=False, border=0))
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:70em}figure{margin:1em 0}"
        "img{max-width:100%}table{border-collapse:collapse;font-size:.85em}"
        "td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(figsize=(8, 3.6), dpi=100)


def _png(figure) -> bytes:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _similarity_chart(runs: pd.DataFrame, versions: list[str]) -> bytes:
    figure, axes = _figure()
    positions = np.arange(len(versions))
    for side, colour in (("user", "tab:blue"), ("item", "tab:orange")):
        for kind, style in (("raw", ":"), ("stabilized", "-")):
            values = pd.to_numeric(runs[f"{side}_cosine_{kind}"], errors="coerce").to_numpy(float)
            axes.plot(positions, values, style, marker="o", color=colour, label=f"{side}s, {kind}")
    axes.set(xticks=positions, ylabel="mean cosine to base", ylim=(-1.05, 1.05))
    axes.set_xticklabels(versions, rotation=30, ha="right")
    axes.axhline(0, color="grey", linewidth=0.5)
    axes.legend(loc="lower right", fontsize="small", ncol=2)
    return _png(figure)


def _spectrum_chart(spectra: pd.Series, versions: list[str]) -> bytes:
    figure, axes = _figure()
    for version in versions:
        if version in spectra.index:
            values = np.asarray(spectra[version], dtype=float)
            axes.plot(np.arange(1, values.size + 1), values, marker=".", label=version)
    axes.set(yscale="log", xlabel="k", ylabel="σ_k")
    axes.legend(fontsize="small", ncol=2)
    return _png(figure)


def _error_chart(runs: pd.DataFrame, versions: list[str]) -> bytes:
    figure, axes = _figure()
    positions = np.arange(len(versions))
    errors = pd.to_numeric(runs["max_dot_product_error"], errors="coerce").to_numpy(float)
    axes.bar(positions, np.maximum(errors, 1e-17), color="tab:green")
    axes.set(xticks=positions, yscale="log", ylabel="max |w'·t' − w·t| / (‖w‖‖t‖)")
    axes.set_xticklabels(versions, rotation=30, ha="right")
    return _png(figure)
