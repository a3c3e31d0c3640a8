"""Read back what an offline W&B run recorded (RUN/wandb/offline-run-*/run-<id>.wandb).

Hand-written because wandb 0.31 no longer ships a Python reader for its transaction log (the
reader lives in its Go core). The file is a LevelDB-style log: a 7-byte header (b":W&B", magic,
version), then 32 KiB blocks of chunks, each [crc32c (4) | length (2) | type (1) | data], where
type 1 is a whole record and 2/3/4 the first/middle/last piece of one; each record is a protobuf.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER = 32768, 7


def records(path: Path) -> Iterator[pb.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, pieces = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if left < HEADER or (kind == 0 and length == 0):  # block padding
            pos += left
            continue
        pieces += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def offline_runs(wandb_dir: Path) -> dict[str, list]:
    """Everything recorded under a W&B folder: {"runs": [RunRecord], "summary": {key: value},
    "images": {key: path}} merged over its offline runs (a resumed run adds a folder)."""
    out: dict = {"runs": [], "summary": {}, "images": {}}
    for log in sorted(wandb_dir.glob("offline-run-*/run-*.wandb")):
        for record in records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                out["runs"].append(record.run)
            elif kind in ("summary", "history"):
                items = record.summary.update if kind == "summary" else record.history.item
                for item in items:
                    key = item.key or item.nested_key[0]
                    if item.nested_key[1:] == ["path"]:
                        out["images"][key] = json.loads(item.value_json)
                    elif not item.nested_key[1:]:
                        out["summary"][key] = json.loads(item.value_json)
    return out
