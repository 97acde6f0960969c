"""CSV and TSV with a header row; column names are matched to article fields by common names."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

from ingest.loaders.types import Loaded

# Articles are long: the csv module's default 128 KiB field limit would reject real ones.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def load_csv(path: Path) -> Iterator[Loaded]:
    size = path.stat().st_size
    with path.open("r", encoding="utf-8", errors="replace", newline="") as fh:
        sample = fh.read(8192)
        fh.seek(0)
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        delimiter, quotechar = dialect.delimiter, dialect.quotechar
        try:
            sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t|")
            delimiter, quotechar = sniffed.delimiter, sniffed.quotechar or quotechar
        except csv.Error:
            pass
        # Only the separator and the quote are guessed: the sniffer often judges quotes doubled inside a
        # field ("") not to be in use even where its sample has them, and the rest of such a field would be
        # read as broken rows. Every common writer doubles them (RFC 4180).
        reader = csv.reader(fh, dialect, delimiter=delimiter, quotechar=quotechar, doublequote=True)
        header = next(reader, None)
        if not header:
            yield Loaded("empty file: expected a header row", None, size)
            return
        names = [h.strip().lower().replace(" ", "_").lstrip("\ufeff") for h in header]
        done = len(",".join(header)) + 1
        for row in reader:
            # tell() is unavailable while the reader iterates; the row's length is a close estimate.
            done = min(size, done + sum(len(cell) + 1 for cell in row))
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                yield Loaded(f"expected {len(names)} columns, got {len(row)}", reader.line_num, done)
                continue
            record = {name: cell for name, cell in zip(names, row, strict=True) if name and cell.strip()}
            yield Loaded(record, reader.line_num, done)
