"""The house style's save refuses a figure whose text is cut at the canvas edge."""

import matplotlib.pyplot as plt
import pytest

from alignlab.figures.style import figure, house_style, legend_below, outside_canvas, save


def _panels_with_long_labels(n_labels: int):
    fig, axes = figure(ncols=2)
    for i in range(n_labels):
        axes[0, 0].plot([0, 1], [i, i + 1], label=f"a rather long legend entry number {i}")
    return fig


def test_a_wide_legend_wraps_into_fewer_columns_and_stays_inside(tmp_path):
    with house_style():
        fig = _panels_with_long_labels(6)
        legend_below(fig)
        assert outside_canvas(fig) == []
        rows = {round(t.get_window_extent().y0) for t in fig.legends[0].get_texts()}
        assert len(rows) > 1  # five of these entries side by side are wider than the figure
        assert [p.suffix for p in save(fig, tmp_path, "ok")] == [".pdf", ".png"]


def test_text_outside_the_canvas_is_an_error_naming_it(tmp_path):
    with house_style():
        fig = _panels_with_long_labels(2)
        fig.legend(loc="center left", bbox_to_anchor=(0.9, 0.5))  # hangs off the right edge
        assert any("legend entry" in text for text in outside_canvas(fig))
        with pytest.raises(ValueError, match="text reaches outside the canvas"):
            save(fig, tmp_path, "cut")
    assert not (tmp_path / "cut.pdf").exists()
    plt.close("all")
