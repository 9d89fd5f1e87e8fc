"""Parquet bytes that depend only on the table: fixed schema, no pandas metadata, no timestamps."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as Parquet; the same table always gives the same bytes with the same pyarrow.

    Parquet's footer names the writer (`parquet-cpp-arrow version N`), so a pyarrow upgrade changes the
    bytes; the CSV is the artefact that stays identical across library versions.
    """
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", compression_level=3, use_dictionary=False)
    return buffer.getvalue()


def read_table(data: bytes) -> pa.Table:
    # ParquetFile skips the dataset layer of pq.read_table: half the time for the small files billing reads.
    return pq.ParquetFile(io.BytesIO(data)).read()
