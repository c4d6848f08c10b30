"""The check after a write: what the written file holds of the source's metadata, and what it lost.

`lost` reads the written file's header back (the format's Pillow plugin, no pixels decoded) and
names every piece of the source's metadata (`SourceInfo`, captured by runtime/image_metadata.py)
that the file does not hold, with why: a format that cannot hold it (`image_metadata.HOLDS`),
the old pixel encoding a PNG chunk described, or a writer that dropped it. EXIF and TIFF tags are
compared tag by tag, in a form that compares equal across Pillow's readers (`_text`); PNG chunks
and JPEG segments part by part. The names go into the record's `dropped` list.

Torch-free: pillow only.
"""

from __future__ import annotations

import io
from typing import Dict, List, Optional, Tuple

from PIL import Image

from runtime.image_metadata import (
    EXIF_GROUPS,
    HOLDS,
    PNG_MODE_BOUND,
    TIFF_LAYOUT,
    bmp_icc,
    jpeg_sampling,
    png_chunk_list,
)


def lost(source, fmt: str, data: bytes, mode: str, icc_reason: Optional[str] = None) -> List[str]:
    """Each piece of the source's metadata that `data` (a `fmt` file of `mode`) does not hold, and why."""
    found = _found(fmt, data)
    out = []
    for kind, value in _wanted(source).items():
        missing = _missing(kind, value, found)
        if missing:
            out.append(f"{_name(kind, value, missing)} not kept ({_why(kind, missing, fmt, icc_reason)})")
    coding = source.jpeg
    if fmt == "JPEG" and coding is not None and len(coding.sampling) == len(found["sampling"]) == 3 \
            and coding.sampling != found["sampling"]:  # 4:1:1, 4:4:0...: Pillow writes three patterns only
        out.append(f"JPEG chroma sampling {coding.sampling} not kept (Pillow writes 4:4:4, 4:2:2 or 4:2:0; "
                   f"written as {found['sampling']})")
    return out


def _wanted(source) -> Dict[str, object]:
    want: Dict[str, object] = {}
    tiff = {k: _text(v) for k, v in (source.tiff_tags or {}).items()}
    exif = {key: value for key, value in _exif_entries(source.exif).items() if key[1] not in tiff or key[0]}
    for kind, value in (("EXIF", exif), ("TIFF tags", tiff), ("ICC profile", source.icc_profile),
                        ("XMP", source.xmp), ("DPI", source.dpi), ("JPEG comment", source.comment)):
        if value:
            want[kind] = value
    for tag, body in source.png_chunks or []:
        want.setdefault("PNG chunk", []).append((tag, body))
    if source.jpeg_segments:
        want["JPEG segment"] = list(source.jpeg_segments)
    return want


def _exif_entries(exif: Optional[bytes]) -> Dict[Tuple[int, int], object]:
    """{(sub-IFD or 0, tag): comparable value} of an EXIF block, layout tags left out."""
    if not exif:
        return {}
    e = Image.Exif()
    try:
        e.load(exif)
    except Exception:  # a broken EXIF block: nothing to compare
        return {}
    entries = {(0, tag): _text(value) for tag, value in e.items() if tag not in TIFF_LAYOUT}
    for group in EXIF_GROUPS:
        entries.update({(group, tag): _text(value) for tag, value in e.get_ifd(group).items()})
    return entries


def _text(value):
    """A tag value in a form that compares equal across Pillow's readers (a rational may come back
    as a float or an IFDRational, a single value as a 1-tuple, a string with its NUL)."""
    if isinstance(value, tuple):
        return _text(value[0]) if len(value) == 1 else tuple(_text(v) for v in value)
    if isinstance(value, str):
        return value.rstrip("\0")
    if isinstance(value, bytes):
        return value
    try:
        return round(float(value), 6)
    except (TypeError, ValueError, ZeroDivisionError):  # a rational with a zero denominator
        return str(value)


def _found(fmt: str, data: bytes) -> Dict[str, object]:
    """The metadata a written file holds, read back from its header."""
    Image.init()
    factory, _accept = Image.OPEN[fmt]  # the plugin itself: no decompression-bomb check on our own output
    img = factory(io.BytesIO(data), None)
    exif = img.getexif()
    found: Dict[str, object] = {
        "exif": _exif_entries(exif.tobytes()) if len(exif) else {},
        "icc": img.info.get("icc_profile") or (bmp_icc(data) if fmt == "BMP" else None),
        "xmp": img.info.get("xmp"), "dpi": img.info.get("dpi"), "comment": img.info.get("comment"),
        "chunks": png_chunk_list(data) if fmt == "PNG" else [],
        "sampling": jpeg_sampling(img) if fmt == "JPEG" else (),
        "segments": list(getattr(img, "applist", [])),
    }
    if isinstance(found["xmp"], str):
        found["xmp"] = found["xmp"].encode("utf-8")
    return found


PARTS_FOUND_IN = {"PNG chunk": "chunks", "JPEG segment": "segments"}  # kinds that are lists of raw parts


def _missing(kind: str, value, found: Dict[str, object]):
    """The part of `value` (one kind of the source's metadata) the written file lacks; empty when none."""
    if kind == "EXIF":
        return {key: v for key, v in value.items() if found["exif"].get(key) != v}
    if kind == "TIFF tags":
        return {tag: v for tag, v in value.items() if found["exif"].get((0, tag)) != v}
    if kind in PARTS_FOUND_IN:
        return [part for part in value if part not in found[PARTS_FOUND_IN[kind]]]
    if kind == "DPI":
        got = found["dpi"]
        kept = bool(got) and all(abs(a - b) <= max(0.5, 0.005 * a) for a, b in zip(value, got))
        return None if kept else value
    key = {"ICC profile": "icc", "XMP": "xmp", "JPEG comment": "comment"}[kind]
    return None if found[key] == value else value


def _name(kind: str, value, missing) -> str:
    if kind == "PNG chunk":
        tags = sorted({tag.decode("latin-1") for tag, _ in missing})
        return f"PNG chunk{'s' if len(tags) > 1 else ''} {', '.join(tags)}"
    if kind == "TIFF tags":
        return f"TIFF tag{'s' if len(missing) > 1 else ''} {', '.join(str(t) for t in sorted(missing))}"
    if kind == "JPEG segment":
        apps = sorted({app for app, _ in missing})
        return f"JPEG {', '.join(apps)} segment{'s' if len(missing) > 1 else ''}"
    if kind == "EXIF" and len(missing) < len(value):
        return f"EXIF tag{'s' if len(missing) > 1 else ''} {', '.join(hex(t) for _, t in sorted(missing))}"
    return kind


def _why(kind: str, missing, fmt: str, icc_reason: Optional[str]) -> str:
    if kind == "ICC profile" and icc_reason:
        return icc_reason
    if fmt not in HOLDS[kind]:
        return f"{fmt} cannot hold it"
    if kind == "PNG chunk" and all(tag in PNG_MODE_BOUND for tag, _ in missing):
        return "it describes the old pixel encoding, and the mode changed"
    return f"the {fmt} writer did not store it"
