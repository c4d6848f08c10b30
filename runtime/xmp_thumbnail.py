"""The thumbnail an XMP packet holds (`xmp:Thumbnails`): a small JPEG of the photo, in base64.

Adobe's applications (Photoshop, Bridge, Illustrator's exports) write one into the XMP of the
files they save, under `xmp:Thumbnails` (`xap:Thumbnails` in older files):

    <xmp:Thumbnails><rdf:Alt><rdf:li rdf:parseType="Resource">
        <xmpGImg:width>256</xmpGImg:width> <xmpGImg:height>192</xmpGImg:height>
        <xmpGImg:format>JPEG</xmpGImg:format>
        <xmpGImg:image>/9j/4AAQSkZJRgABAgEASABIAAD...&#xA;...</xmpGImg:image>
    </rdf:li></rdf:Alt></xmp:Thumbnails>

(or the same fields as attributes of one `rdf:li` element). The regular writer carries the XMP
packet as it was, so a changed photo's thumbnail showed the damage: it is made again from the
restored photo, as the EXIF and Photoshop thumbnails are (runtime/jpeg_pictures.py), and put in
the packet's place of the old one, its width and height set for it. The packet keeps its length
where its padding allows (editors rewrite a packet in place when it fits).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Optional, Union

from PIL import Image

from runtime import jpeg_blocks

XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"  # the APP1 segment's header before the packet
# The image, as an element or an attribute of the `rdf:li` that describes the thumbnail; Adobe
# names the namespace (http://ns.adobe.com/xap/1.0/g/img/) xmpGImg, or xapGImg in older files.
_IMAGE = re.compile(rb"<(x[am]pGImg):image>([^<]*)</\1:image>|\b(x[am]pGImg):image=\"([^\"]*)\"")
_BREAKS = re.compile(rb"&#[xX]0*[aA];|&#0*10;|&#[xX]0*[dD];|&#0*13;|\s")
_END = re.compile(rb"(\s*)(<\?xpacket end=)")
LINE = 76  # base64 characters a line, each line ended by an escaped line feed (as Adobe writes it)


def read(xmp: Union[bytes, str, None]) -> Optional[bytes]:
    """The JPEG thumbnail in the XMP packet `xmp` (Pillow gives it as text or bytes), or None."""
    found = _IMAGE.search(xmp.encode("utf-8") if isinstance(xmp, str) else xmp or b"")
    if found is None:
        return None
    try:
        jpeg = base64.b64decode(_BREAKS.sub(b"", found.group(2) or found.group(4)), validate=True)
    except (binascii.Error, ValueError):
        return None
    return jpeg if jpeg[:2] == b"\xff\xd8" else None


def replaced(xmp: bytes, thumbnail: bytes) -> bytes:
    """`xmp` with `thumbnail` in place of its thumbnail's image, and the width and height beside it
    set for it (`xmp` as it is where it holds none)."""
    found = _IMAGE.search(xmp)
    if found is None:
        return xmp
    coded = base64.b64encode(thumbnail)
    text = b"&#xA;".join(coded[i:i + LINE] for i in range(0, len(coded), LINE))
    group = 2 if found.group(2) is not None else 4
    prefix = found.group(1) or found.group(3)
    # The thumbnail's own `rdf:li`: its fields lie between the element's start and its end.
    start = xmp.rfind(b"<rdf:li", 0, found.start())
    end = xmp.find(b"</rdf:li>", found.end()) if group == 2 else xmp.find(b">", found.end())
    start, end = (found.start(), found.end()) if start < 0 or end < 0 else (start, end)
    w, h = Image.open(io.BytesIO(thumbnail)).size
    fields = xmp[start:found.start(group)] + text + xmp[found.end(group):end]
    for name, value in ((b"width", w), (b"height", h)):
        fields = re.sub(rb"(" + prefix + b":" + name + rb"(?:>|=\"))\d+", rb"\g<1>" + str(value).encode(), fields)
    out = xmp[:start] + fields + xmp[end:]
    return _padded(out, len(xmp))


def _padded(xmp: bytes, length: int) -> bytes:
    """`xmp` with the whitespace before its packet's end grown or shrunk toward `length` bytes (a
    packet holds that padding so it can be rewritten in place)."""
    end = _END.search(xmp)
    if end is None:
        return xmp
    padding = end.group(1)
    change = length - len(xmp)
    if change >= 0:
        padding += b" " * change
    else:
        padding = padding[:max(len(padding) + change, min(len(padding), 1))]
    return xmp[:end.start(1)] + padding + xmp[end.start(2):]


def with_thumbnail(data: bytes, thumbnail: bytes) -> bytes:
    """The JPEG `data` with `thumbnail` in place of the one in its XMP segment; `data` as it is
    where it has none, or the segment would pass its 64 kB limit."""
    for marker, start, end in jpeg_blocks.segments(data):
        if marker != 0xE1 or data[start + 4:start + 4 + len(XMP_ID)] != XMP_ID:
            continue
        xmp = data[start + 4 + len(XMP_ID):end]
        new = replaced(xmp, thumbnail)
        return data if new == xmp else jpeg_blocks.with_segment(data, start, end, 0xE1, XMP_ID + new) or data
    return data
