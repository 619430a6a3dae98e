"""The explorer page's assembly and the `alignlab explore` command (the browser test of the
built page is in test_workflow.py)."""

import base64
import io
import json
import re
import webbrowser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from alignlab.cli import main
from alignlab.explorer.page import _fill, build_page, page_scale
from alignlab.explorer.panels import bars_panel, curves_panel, png_uri, view, write_views


def _markers(path):
    pd.DataFrame(
        [
            {"experiment": "toy", "id": "m1", "control": False, "published": "1 </script>",
             "reproduced": "seed 0: 1", "null_reproduced": "seed 0: 0 (x)", "status": "holds"},
            {"experiment": "toy", "id": "c1", "control": True, "published": "x",
             "reproduced": "y", "null_reproduced": None, "status": "holds"},
        ]
    ).to_parquet(path)  # fmt: skip
    return path


def _views(path, steps=(0, 10, 20)):
    grid = np.arange(len(steps) * 4, dtype=float).reshape(len(steps), 4)
    panels = [
        curves_panel("loss", "loss", list(steps), {"train": [3.0, 2.0, 1.0]}, [("cleanup", 5, 15)]),
        bars_panel("bars", "bars", [1, 2, 3, 4], {"W_E": grid}, highlight={2}),
    ]
    write_views("toy", "a toy", [view("seed 0", steps, panels)], path)
    return path


def _embedded(html: str) -> dict:
    match = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_the_page_embeds_plotly_the_views_and_the_findings(tmp_path):
    out = tmp_path / "explorer" / "index.html"
    size = build_page([_views(tmp_path / "v.json")], _markers(tmp_path / "m.parquet"), "smoke", out)
    html = out.read_text()
    assert size == out.stat().st_size
    # the page's own markup points nowhere off the page (plotly.js's strings aside: the browser
    # test loads the page with the network off and checks that nothing is fetched)
    head, rest = html.split("<script>", 1)
    ours = head + rest.split("</script>", 1)[1]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", ours)
    assert "<!--" not in html.split('id="data"')[1].split("</script>")[0]
    assert "Plotly" in html and page_scale(out) == "smoke"
    data = _embedded(html)
    assert [m["id"] for m in data["markers"]] == ["m1"]  # findings only; controls have a table
    assert data["markers"][0]["published"] == "1 </script>"  # escaped in the page, intact here
    bars = data["experiments"][0]["views"][0]["panels"][1]
    assert [f["update"]["y"][0] for f in bars["frames"]] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
    ]


def test_a_view_needs_one_frame_per_checkpoint(tmp_path):
    grid = np.zeros((2, 3))
    panels = [bars_panel("bars", "bars", [1, 2, 3], {"W_E": grid})]
    with pytest.raises(ValueError, match="panel 'bars' of run 'r' has 2 frames for 3 checkpoints"):
        view("r", [0, 1, 2], panels)


def test_an_unknown_placeholder_is_an_error():
    assert _fill("a @@X@@ b @@Y@@", {"X": "@@Y@@", "Y": "2"}) == "a @@Y@@ b 2"
    with pytest.raises(KeyError, match="@@Z@@"):
        _fill("@@Z@@", {})


def test_images_are_palette_pngs_of_the_grid():
    grid = np.array([[0.0, 0.5], [1.0, 2.0]])
    uri = png_uri(grid, 0.0, 1.0)
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert image.size == (2, 2) and image.mode == "P"
    index = np.asarray(image)
    assert index[0, 0] == 0 and index[1, 0] == 255 and index[1, 1] == 255  # clipped at vmax


def test_explore_opens_the_page_or_prints_where_it_is(tmp_path, monkeypatch, capsys):
    assert main(["--root", str(tmp_path), "explore", "--scale", "smoke"]) == 2
    assert "no explorer page" in capsys.readouterr().out
    page = tmp_path / "paper" / "explorer" / "index.html"
    build_page([_views(tmp_path / "v.json")], _markers(tmp_path / "m.parquet"), "smoke", page)
    assert main(["--root", str(tmp_path), "explore", "--scale", "laptop"]) == 2
    assert "built at the smoke scale, not laptop" in capsys.readouterr().out

    def no_browser():
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", no_browser)
    assert main(["--root", str(tmp_path), "explore", "--scale", "smoke"]) == 0
    assert f"no browser found; open {page.resolve()}" in capsys.readouterr().out
    opened = []
    monkeypatch.setattr(webbrowser, "get", lambda: type("B", (), {"open": opened.append})())
    assert main(["--root", str(tmp_path), "explore", "--scale", "smoke"]) == 0
    assert opened == [page.resolve().as_uri()]
