"""The offline explorer: one self-contained HTML page (paper/explorer/index.html) where a reader
chooses an experiment and a run and scrubs through its checkpoints, every view moving together.

Experiments own their views: each writes `results/<name>/<scale>/explorer.json` (a rule of its
own, from its tidy tables and checkpoints) with `panels.view` and the panel builders here; the
paper's rule assembles every experiment's views and the markers table into the page
(`page.build_page`). Charts are plotly figures; plotly.js is embedded, so the page opens from the
file system with no server and no network.
"""
