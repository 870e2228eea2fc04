#!/usr/bin/env python3
"""Rebuild the database a dbbackup differential backup represents, with nothing
but Python's standard library (docs/differential.md describes the format).

    python3 rebuild_diff.py BASE.db.gz DIFF.diff.gz OUT.db

Checks the base's checksum, the diff's payload checksum and the SHA-256 of the
rebuilt database against what the diff recorded; OUT.db must not exist, and is
written only when every check passes.
"""
import gzip
import hashlib
import json
import os
import struct
import sys


def metadata(path):
    """The JSON in the FEXTRA field of the file's first gzip member."""
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    if head[:3] != b"\x1f\x8b\x08" or not head[3] & 0x04 or head[12:14] != b"DB":
        sys.exit(f"{path}: no dbbackup metadata")
    length = struct.unpack("<H", head[14:16])[0]
    return json.loads(head[16 : 16 + length].rstrip(b" "))


def main(base_path, diff_path, out_path):
    meta = metadata(diff_path)
    base_meta = metadata(base_path)
    if meta.get("type") != "diff":
        sys.exit(f"{diff_path}: not a differential backup")
    if base_meta.get("type", "full") != "full" or base_meta["checksum"] != meta["base_checksum"]:
        sys.exit(f"{base_path}: not the base {meta['base']} this diff was made against")
    if os.path.exists(out_path):
        sys.exit(f"{out_path} exists; refusing to overwrite it")
    page_size, page_count = meta["page_size"], meta["page_count"]
    temp = out_path + ".part"
    try:
        with gzip.open(base_path, "rb") as src, open(temp, "wb") as out:
            digest = hashlib.sha256()
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if "sha256:" + digest.hexdigest() != base_meta["checksum"]:
            sys.exit(f"{base_path}: content does not match its recorded checksum")
        with gzip.open(diff_path, "rb") as diff, open(temp, "r+b") as out:
            out.truncate(page_count * page_size)
            payload = hashlib.sha256()
            header = diff.read(16)
            payload.update(header)
            if header != b"DBBKDIFF" + struct.pack(">II", page_size, page_count):
                sys.exit(f"{diff_path}: payload header does not match its metadata")
            records, last = 0, 0
            while number := diff.read(4):
                page = diff.read(page_size)
                payload.update(number)
                payload.update(page)
                (pgno,) = struct.unpack(">I", number)
                if len(number) < 4 or len(page) < page_size or not last < pgno <= page_count:
                    sys.exit(f"{diff_path}: damaged page record")
                out.seek((pgno - 1) * page_size)
                out.write(page)
                records, last = records + 1, pgno
            if "sha256:" + payload.hexdigest() != meta["diff_checksum"] or records != meta["changed_pages"]:
                sys.exit(f"{diff_path}: payload does not match its recorded checksum")
        rebuilt = hashlib.sha256()
        with open(temp, "rb") as f:
            while chunk := f.read(1 << 20):
                rebuilt.update(chunk)
        if "sha256:" + rebuilt.hexdigest() != meta["checksum"]:
            sys.exit("the rebuilt database does not match the recorded checksum")
        os.link(temp, out_path)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        sys.exit(f"cannot rebuild: {e}")
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    print(f"rebuilt {out_path}: {page_count} pages of {page_size} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
