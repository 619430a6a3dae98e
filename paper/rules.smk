# The paper: published-vs-reproduced markers, one LaTeX macro per generated number, the section
# list, and the PDF where Debian's latexmk is installed. Every experiment in PAPER_EXPERIMENTS
# provides results/<name>/<scale>/{markers,runs}.parquet, numbers.json, and in its folder
# markers.yaml and paper.tex.
import shutil
from importlib.metadata import version

from alignlab.paper import reading_order

# in the reading order paper/order.yaml declares (alignlab.paper.reading_order)
PAPER_EXPERIMENTS = reading_order(
    ROOT,
    [
        name
        for name in TARGETS
        if (ROOT / "experiments" / name / "markers.yaml").exists() and selected(name)
    ],
)
PAPER_OUT = f"results/paper/{SCALE}"
PLOTLY_VERSION = version("plotly")
# The PDF is built where Debian's latexmk is installed (`--config pdf=off` skips it); without it
# the HTML report (snakemake --report) is the product.
HAVE_TEX = shutil.which("latexmk") is not None and str(config.get("pdf", "auto")) != "off"
PAPER_TARGETS = [
    f"{PAPER_OUT}/markers.parquet",
    "paper/generated/numbers.tex",
    "paper/generated/sections.tex",
    "paper/explorer/index.html",
] + (["paper/main.pdf"] if HAVE_TEX else [])


rule experiment_markers:
    input:
        values=f"results/{{experiment}}/{SCALE}/markers.parquet",
        runs=f"results/{{experiment}}/{SCALE}/runs.parquet",
        specs=ROOT / "experiments/{experiment}/markers.yaml",
    output:
        f"results/{{experiment}}/{SCALE}/published_vs_reproduced.parquet",
    log:
        f"results/{{experiment}}/{SCALE}/logs/published_vs_reproduced.log",
    params:
        scale=SCALE,
        code=code("alignlab.markers"),
    script:
        "scripts/experiment_markers.py"


rule paper_markers:
    input:
        tables=expand(
            f"results/{{experiment}}/{SCALE}/published_vs_reproduced.parquet",
            experiment=PAPER_EXPERIMENTS,
        ),
        bib=ROOT / "paper/references.bib",
    output:
        table=f"{PAPER_OUT}/markers.parquet",
        tex="paper/generated/markers_table.tex",
        controls_tex="paper/generated/controls_table.tex",
        discussion="paper/generated/discussion.tex",
        html=report(
            "paper/generated/markers_table.html",
            category="published vs reproduced",
            caption="report/markers.rst",
        ),
    log:
        f"{PAPER_OUT}/logs/markers.log",
    params:
        code=code("alignlab.markers_table"),
    script:
        "scripts/markers.py"


rule paper_numbers:
    input:
        expand(f"results/{{experiment}}/{SCALE}/numbers.json", experiment=PAPER_EXPERIMENTS),
    output:
        "paper/generated/numbers.tex",
    log:
        f"{PAPER_OUT}/logs/numbers.log",
    resources:
        mem_mb=500,
    params:
        code=code("alignlab.paper"),
    script:
        "scripts/numbers.py"


rule paper_sections:
    input:
        # the list of sections changes with the set of experiments (`only=`): naming their
        # numbers as inputs makes a changed set rerun this job (a changed param alone did not)
        expand(f"results/{{experiment}}/{SCALE}/numbers.json", experiment=PAPER_EXPERIMENTS),
        order=ROOT / "paper/order.yaml",
    output:
        "paper/generated/sections.tex",
    log:
        f"{PAPER_OUT}/logs/sections.log",
    resources:
        mem_mb=500,
    params:
        experiments=PAPER_EXPERIMENTS,
        code=code("alignlab.paper"),
    script:
        "scripts/sections.py"


rule paper_pdf:
    input:
        "paper/generated/numbers.tex",
        "paper/generated/sections.tex",
        "paper/generated/markers_table.tex",
        "paper/generated/controls_table.tex",
        "paper/generated/discussion.tex",
        [path for name in PAPER_EXPERIMENTS for path in TARGETS[name]],
        tex=ROOT / "paper/main.tex",
        bib=ROOT / "paper/references.bib",
        # the sections are \input by path: list them so that editing one rebuilds the PDF
        sections=[ROOT / "experiments" / name / "paper.tex" for name in PAPER_EXPERIMENTS],
    output:
        "paper/main.pdf",
    log:
        job=f"{PAPER_OUT}/logs/pdf.log",
        latexmk=f"{PAPER_OUT}/logs/latexmk.log",
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code("alignlab.paper"),
    script:
        "scripts/pdf.py"


rule paper_explorer:
    input:
        views=[EXPLORE[name] for name in PAPER_EXPERIMENTS if name in EXPLORE],
        markers=f"{PAPER_OUT}/markers.parquet",
        # the page's HTML and JavaScript (code() hashes Python only)
        template=ROOT / "lib/alignlab/explorer/page.html",
    output:
        "paper/explorer/index.html",
    log:
        f"{PAPER_OUT}/logs/explorer.log",
    params:
        scale=SCALE,
        plotly=PLOTLY_VERSION,  # a new plotly.js rebuilds the page
        code=code("alignlab.explorer.page"),
    script:
        "scripts/explorer.py"
