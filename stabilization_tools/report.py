"""A self-contained HTML report of the published versions, read at a glance.

``render_report`` takes the rows of ``stabilization_runs``, the singular values
of ``stabilization_transforms`` and the drift alerts raised (as pandas frames)
and returns one HTML page: a headline for the latest version, three charts and
the runs table. The charts are PNG images embedded as data URIs, so the file
can be mailed, attached to a ticket or opened offline. matplotlib is needed
only here.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np
import pandas as pd

#: chart id → caption; each chart is an <img> inside <figure id=...>
CHARTS = {
    "chart-similarity": (
        "Same-id cosine similarity to the published base version, users (left) and items "
        "(right): the new retrain's raw embeddings (dotted) and its stabilized ones (solid)"
    ),
    "chart-dot-product-error": (
        "Max relative dot-product error per version (sampled pairs), log scale, "
        "against the audit's tolerance"
    ),
    "chart-spectrum": (
        "Singular values of the score matrix W·Tᵀ per version (older versions lighter, "
        "the latest in black)"
    ),
}

#: the runs table: column of stabilization_runs → heading (newest version first)
TABLE_COLUMNS = {
    "embedding_version": "version",
    "base_version": "base",
    "users": "users",
    "items": "items",
    "aligned_ids": "aligned",
    "rank": "rank",
    "user_cosine": "user cos raw → stab.",
    "item_cosine": "item cos raw → stab.",
    "procrustes_residual": "residual",
    "max_dot_product_error": "max dot err",
    "alerts": "drift alerts",
}

#: most version labels written under a chart's x axis (the rest are ticks only)
MAX_LABELS = 12

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1180px;padding:0 1em;color:#222}
h1{margin-bottom:.2em}.sub{color:#555;margin-top:0}
#headline{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{flex:1 1 14em;border:1px solid #ddd;border-radius:6px;padding:.6em .9em}
.card h3{margin:0 0 .3em;font-size:.8em;text-transform:uppercase;color:#666;letter-spacing:.04em}
.big{font-size:1.5em;font-weight:600}.muted{color:#666;font-size:.9em}
.ok{border-left:5px solid #2a9d48}.alert{border-left:5px solid #d1495b}
.alert ul{margin:.2em 0 0;padding-left:1.1em;font-size:.9em}
figure{margin:1.2em 0}img{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;font-size:.8em;width:100%}
td,th{padding:.25em .45em;border-bottom:1px solid #e3e3e3;text-align:right;white-space:nowrap}
th{position:sticky;top:0;background:#f6f6f6}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
th:last-child{text-align:left}td:last-child{white-space:normal;text-align:left;color:#b0303f}
""".strip()


def render_report(
    runs: pd.DataFrame,
    spectra: pd.DataFrame,
    title: str = "Embedding stabilization",
    alerts: pd.DataFrame | None = None,
    tolerance: float | None = None,
) -> str:
    """Return the report as one HTML page.

    Parameters
    ----------
    runs : DataFrame
        Rows of ``stabilization_runs`` (any order; shown by ``published_at``).
    spectra : DataFrame
        ``embedding_version`` and ``singular_values`` (a list per version), e.g.
        the ``items`` rows of ``stabilization_transforms``.
    alerts : DataFrame, optional
        Drift alerts raised (macro ``drift_alerts``): ``embedding_version``,
        ``alert``, ``message``. None: not checked.
    tolerance : float, optional
        The dot-product audit's tolerance (var ``dot_product_tolerance``),
        drawn on the error chart and compared with in the headline.
    """
    if runs.empty:
        raise ValueError("stabilization_runs has no rows: no version has been published yet")
    runs = runs.sort_values(["published_at", "embedding_version"]).reset_index(drop=True)
    versions = runs["embedding_version"].astype(str).tolist()
    spectra = spectra.set_index("embedding_version")["singular_values"]
    figures = {
        "chart-similarity": _similarity_chart(runs, versions),
        "chart-dot-product-error": _error_chart(runs, versions, tolerance),
        "chart-spectrum": _spectrum_chart(spectra, versions),
    }
    body = [
        f"<h1>{html.escape(title)}</h1>",
        (
            f'<p class="sub">{len(versions)} published versions, '
            f"{html.escape(versions[0])} to {html.escape(versions[-1])}.</p>"
        ),
        _headline(runs.iloc[-1], alerts, tolerance),
    ]
    for chart_id, png in figures.items():
        caption = html.escape(CHARTS[chart_id])
        encoded = base64.b64encode(png).decode("ascii")
        body.append(
            f'<figure id="{chart_id}"><img alt="{caption}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    body.append("<h2>stabilization_runs, newest first</h2>")
    body.append(_runs_table(runs, alerts))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _number(value, digits: int = 3) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _card(heading: str, big: str, note: str = "", state: str = "", extra: str = "") -> str:
    """One headline card (arguments are HTML); ``state``: ok (green edge) or alert (red edge)."""
    note_html = f'<div class="muted">{note}</div>' if note else ""
    return (
        f'<div class="card {state}"><h3>{heading}</h3><div class="big">{big}</div>'
        f"{note_html}{extra}</div>"
    )


def _headline(latest: pd.Series, alerts: pd.DataFrame | None, tolerance: float | None) -> str:
    """Cards for the latest version: cosines per side, dot-product error, aligned ids, alerts."""
    base = latest.get("base_version")
    aligned_to = "first version (nothing to align to)" if pd.isna(base) else f"aligned to {base}"
    align_on = latest.get("align_on", "")
    cards = [
        _card(
            "latest version",
            html.escape(str(latest["embedding_version"])),
            html.escape(f"{aligned_to}, on {align_on}"),
        )
    ]
    for side in ("user", "item"):
        raw, stabilized = latest.get(f"{side}_cosine_raw"), latest.get(f"{side}_cosine_stabilized")
        cards.append(
            _card(
                f"{side}s: cosine to base", _number(stabilized), f"stabilized; raw {_number(raw)}"
            )
        )

    error = latest.get("max_dot_product_error")
    note = "relative to ‖w‖·‖t‖"
    state = ""
    if tolerance is not None and not pd.isna(error):
        note += f" ({error / tolerance:.1e} of tolerance {tolerance:.0e})"
        state = "ok" if error <= tolerance else "alert"
    cards.append(
        _card("max dot-product error", "–" if pd.isna(error) else f"{error:.2e}", note, state)
    )

    aligned = latest.get("aligned_ids")
    cards.append(
        _card(
            "aligned ids",
            "–" if pd.isna(aligned) else f"{int(aligned):,}",
            f"{int(latest['users']):,} users, {int(latest['items']):,} items",
        )
    )

    if alerts is None:
        cards.append(_card("drift alerts", "not checked"))
    else:
        raised = alerts[alerts["embedding_version"].astype(str) == str(latest["embedding_version"])]
        if raised.empty:
            cards.append(_card("drift alerts", "none", state="ok"))
        else:
            listed = "".join(f"<li>{html.escape(str(m))}</li>" for m in raised["message"])
            cards.append(
                _card(
                    "drift alerts",
                    f"{len(raised)} raised",
                    state="alert",
                    extra=f"<ul>{listed}</ul>",
                )
            )
    return '<section id="headline">' + "".join(cards) + "</section>"


def _runs_table(runs: pd.DataFrame, alerts: pd.DataFrame | None) -> str:
    table = runs.iloc[::-1].copy()
    for side in ("user", "item"):
        table[f"{side}_cosine"] = [
            "–" if pd.isna(stabilized) else f"{_number(raw)} → {_number(stabilized)}"
            for raw, stabilized in zip(
                table[f"{side}_cosine_raw"], table[f"{side}_cosine_stabilized"]
            )
        ]
    raised = {} if alerts is None else alerts.groupby("embedding_version")["alert"].agg(", ".join)
    table["alerts"] = table["embedding_version"].map(lambda version: raised.get(version, ""))
    table = table[[column for column in TABLE_COLUMNS if column in table.columns]]
    formats = {
        "procrustes_residual": lambda value: _number(value),
        "max_dot_product_error": lambda value: "–" if pd.isna(value) else f"{value:.1e}",
        "aligned_ids": lambda value: "–" if pd.isna(value) else f"{int(value):,}",
        "users": lambda value: f"{int(value):,}",
        "items": lambda value: f"{int(value):,}",
        "base_version": lambda value: "–" if pd.isna(value) else str(value),
    }
    for column, format_value in formats.items():
        if column in table.columns:
            table[column] = table[column].map(format_value)
    return table.rename(columns=TABLE_COLUMNS).to_html(index=False, border=0, escape=True)


def _figure(columns: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(1, columns, figsize=(11, 3.8), dpi=100, sharey=columns > 1, squeeze=False)


def _png(figure) -> bytes:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _version_axis(axes, versions: list[str]) -> None:
    """Versions in publication order on the x axis, at most MAX_LABELS of them labelled."""
    positions = np.arange(len(versions))
    step = max(1, math.ceil(len(versions) / MAX_LABELS))
    labelled = positions[::-1][::step][::-1]  # always label the latest version
    axes.set_xticks(positions, minor=True)
    axes.set_xticks(labelled)
    axes.set_xticklabels([versions[i] for i in labelled], rotation=30, ha="right", fontsize="small")
    axes.set_xlim(-0.6, len(versions) - 0.4)


def _similarity_chart(runs: pd.DataFrame, versions: list[str]) -> bytes:
    figure, panels = _figure(columns=2)
    positions = np.arange(len(versions))
    marker_size = 5 if len(versions) <= 20 else 2.5
    for axes, side, colour in zip(panels[0], ("user", "item"), ("tab:blue", "tab:orange")):
        for kind, style in (("raw", ":"), ("stabilized", "-")):
            values = pd.to_numeric(runs[f"{side}_cosine_{kind}"], errors="coerce").to_numpy(float)
            axes.plot(
                positions,
                values,
                style,
                marker="o",
                markersize=marker_size,
                color=colour,
                label=kind,
            )
        axes.set(title=f"{side}s", ylim=(-1.05, 1.05))
        axes.axhline(0, color="grey", linewidth=0.5)
        axes.grid(axis="y", linewidth=0.3)
        axes.legend(loc="lower right", fontsize="small")
        _version_axis(axes, versions)
    panels[0][0].set_ylabel("mean cosine to base")
    return _png(figure)


def _error_chart(runs: pd.DataFrame, versions: list[str], tolerance: float | None) -> bytes:
    figure, panels = _figure()
    axes = panels[0][0]
    positions = np.arange(len(versions))
    errors = pd.to_numeric(runs["max_dot_product_error"], errors="coerce").to_numpy(float)
    axes.plot(positions, np.maximum(errors, 1e-17), "o-", color="tab:green", label="max error")
    if tolerance is not None:
        axes.axhline(tolerance, color="tab:red", linestyle="--", label=f"tolerance {tolerance:.0e}")
    axes.set(yscale="log", ylabel="max |w'·t' − w·t| / (‖w‖‖t‖)")
    finite = errors[np.isfinite(errors) & (errors > 0)]
    if finite.size:
        # one decade below the smallest error to one above the tolerance (or the largest error)
        top = max(finite.max(), tolerance or 0)
        axes.set_ylim(finite.min() / 10, top * 10)
    axes.grid(axis="y", which="major", linewidth=0.3)
    axes.legend(loc="upper right", fontsize="small")
    _version_axis(axes, versions)
    return _png(figure)


def _spectrum_chart(spectra: pd.Series, versions: list[str]) -> bytes:
    from matplotlib import colormaps

    figure, panels = _figure()
    axes = panels[0][0]
    shown = [version for version in versions if version in spectra.index]
    colours = colormaps["Blues"](np.linspace(0.25, 0.8, max(len(shown) - 1, 1)))
    for number, version in enumerate(shown):
        values = np.asarray(spectra[version], dtype=float)
        latest = number == len(shown) - 1
        axes.plot(
            np.arange(1, values.size + 1),
            values,
            marker="." if latest else None,
            color="black" if latest else colours[number],
            linewidth=2 if latest else 1,
            label=f"{version} (latest)" if latest else (version if number == 0 else None),
            zorder=3 if latest else 2,
        )
    axes.set(yscale="log", xlabel="k", ylabel="σ_k")
    axes.legend(fontsize="small")
    return _png(figure)
