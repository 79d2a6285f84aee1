"""Write the example notebooks: examples/es/*.ipynb and examples/en/*.ipynb.

Each notebook is one list of cells: a Markdown cell carries its Spanish and its
English text, a code cell exists once, so the two languages share their code
cells by construction. The Spanish text follows the tutorial
(../shared/seed/ray_tutorial_es.txt); the English is its translation.

    .venv/bin/python examples/build_notebooks.py          # (re)write all six
    .venv/bin/python examples/build_notebooks.py --check  # fail if any is stale

Outputs are empty and cell ids fixed, so rebuilding gives identical files.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # nbsource, also when imported from the tests

from nbsource.cells import Code, Md  # noqa: E402
from nbsource.ml_ingest import ML_INGEST  # noqa: E402
from nbsource.ray_data_taxi import RAY_DATA_TAXI  # noqa: E402
from nbsource.tasks_and_actors import TASKS_AND_ACTORS  # noqa: E402

LANGUAGES = ("es", "en")

NOTEBOOKS: dict[str, list] = {
    "01_tasks_and_actors": TASKS_AND_ACTORS,
    "02_ray_data_taxi": RAY_DATA_TAXI,
    "03_ml_ingest": ML_INGEST,
}


_CELL_REF = re.compile(r"\{cell:([\w-]+)\}")


def fill_cell_numbers(cells: list) -> list:
    """Replace `{cell:TAG}` with the number the tagged code cell gets in a top-to-bottom run."""
    numbers = {}
    for number, cell in enumerate((c for c in cells if isinstance(c, Code)), start=1):
        for tag in cell.tags:
            numbers[tag] = number

    def fill(text: str) -> str:
        return _CELL_REF.sub(lambda m: str(numbers[m.group(1)]), text)

    return [Md(fill(c.es), fill(c.en)) if isinstance(c, Md) else Code(fill(c.source), c.tags) for c in cells]


def build(name: str, cells: list, language: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(cells):
        cell_id = f"{name[:2]}-{index:02d}"
        if isinstance(cell, Md):
            nb.cells.append(nbformat.v4.new_markdown_cell(getattr(cell, language), id=cell_id))
        else:
            new = nbformat.v4.new_code_cell(cell.source, id=cell_id)
            if cell.tags:
                new.metadata["tags"] = list(cell.tags)
            nb.cells.append(new)
    nbformat.validate(nb)
    return nb


def notebooks() -> dict[pathlib.Path, str]:
    """Every notebook's path and its text as the generator writes it."""
    out = {}
    for name, cells in NOTEBOOKS.items():
        cells = fill_cell_numbers(cells)
        for language in LANGUAGES:
            nb = build(name, cells, language)
            out[HERE / language / f"{name}.ipynb"] = nbformat.writes(nb) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in notebooks().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if args.check and stale:
        print("stale: " + ", ".join(str(p.relative_to(HERE.parent)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
