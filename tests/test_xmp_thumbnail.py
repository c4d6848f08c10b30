"""The thumbnail an XMP packet holds (runtime/xmp_thumbnail.py): read from its base64 text, made
again from the restored photo in a changed JPEG, its width and height set, the packet's length kept
where its padding allows."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from runtime import xmp_thumbnail as xt
from tests.test_jpeg_pictures import PAINTED, _assert_the_written_photo, _jpeg, _restore


def _packet(thumbnail: bytes, attributes: bool = False, prefix: bytes = b"xmpGImg", padding: int = 2000) -> bytes:
    """An XMP packet as Photoshop writes one, its thumbnail as elements (or attributes) of one
    `rdf:li`, its base64 broken into lines by escaped line feeds."""
    coded = base64.b64encode(thumbnail)
    text = b"&#xA;".join(coded[i:i + 76] for i in range(0, len(coded), 76))
    w, h = (str(n).encode() for n in Image.open(io.BytesIO(thumbnail)).size)
    p = prefix
    if attributes:
        li = b'<rdf:li ' + p + b':width="' + w + b'" ' + p + b':height="' + h + b'" ' + p + b':format="JPEG" ' \
             + p + b':image="' + text + b'"/>'
    else:
        li = (b'<rdf:li rdf:parseType="Resource"><' + p + b':format>JPEG</' + p + b':format><' + p + b':width>' + w
              + b'</' + p + b':width><' + p + b':height>' + h + b'</' + p + b':height><' + p + b':image>' + text
              + b'</' + p + b':image></rdf:li>')
    return (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:' + p + b'="http://ns.adobe.com/xap/1.0/g/img/">'
            b'<xmp:CreatorTool>Adobe Photoshop CS6 (Windows)</xmp:CreatorTool><xmp:Thumbnails><rdf:Alt>' + li
            + b'</rdf:Alt></xmp:Thumbnails></rdf:Description></rdf:RDF></x:xmpmeta>\n' + b" " * padding
            + b'\n<?xpacket end="w"?>')


def _small(size, colour=(200, 30, 40), quality=70) -> bytes:
    return _jpeg(Image.new("RGB", size, colour), quality=quality)


@pytest.mark.parametrize("attributes", [False, True])
@pytest.mark.parametrize("prefix", [b"xmpGImg", b"xapGImg"])
def test_the_thumbnail_is_read_and_replaced_with_its_size(attributes, prefix):
    old, new = _small((256, 171)), _small((160, 90), (10, 200, 30))
    packet = _packet(old, attributes, prefix)
    assert xt.read(packet) == old and xt.read(packet.decode("utf-8")) == old  # Pillow gives text
    out = xt.replaced(packet, new)
    assert xt.read(out) == new and len(out) == len(packet)  # the padding took the difference
    w, h = (b'="%d"' if attributes else b">%d<") % 160, (b'="%d"' if attributes else b">%d<") % 90
    assert prefix + b":width" + w in out and prefix + b":height" + h in out
    assert b"Adobe Photoshop CS6 (Windows)" in out and out.endswith(b'<?xpacket end="w"?>')
    no_room = xt.replaced(_packet(old, attributes, prefix, padding=1), _small((600, 400), quality=95))
    assert xt.read(no_room) is not None and no_room.endswith(b'<?xpacket end="w"?>')  # longer: it grows


def test_a_packet_without_a_thumbnail_or_with_a_broken_one():
    assert xt.read(None) is None and xt.read(b"<x:xmpmeta/>") is None
    assert xt.read(b"<xmpGImg:image>not base64!</xmpGImg:image>") is None
    assert xt.read(b"<xmpGImg:image>" + base64.b64encode(b"GIF89a") + b"</xmpGImg:image>") is None
    assert xt.replaced(b"<x:xmpmeta/>", _small((8, 8))) == b"<x:xmpmeta/>"
    data = _jpeg(Image.new("RGB", (16, 16)))
    assert xt.with_thumbnail(data, _small((8, 8))) == data  # no XMP segment: as it was


def test_restore_run_makes_the_xmp_thumbnail_again(tmp_path):
    """The shipped model on a painted JPEG whose XMP holds its thumbnail: the thumbnail is the
    written photo scaled down (the paint gone), the packet's other fields as they were."""
    old = _jpeg(Image.fromarray(PAINTED).resize((256, 171)), quality=70)
    source = _jpeg(Image.fromarray(PAINTED), quality=90, xmp=_packet(old))
    out, record = _restore(tmp_path, source)
    assert record["written"] == "changed" and not record["dropped"]
    written = Image.open(io.BytesIO(out))
    xmp = written.info["xmp"]
    remade = xt.read(xmp)
    assert remade is not None and remade != old and b"Adobe Photoshop CS6" in (xmp if isinstance(xmp, bytes)
                                                                                else xmp.encode())
    assert Image.open(io.BytesIO(remade)).size == (256, 171)
    _assert_the_written_photo(Image.open(io.BytesIO(remade)), Image.open(io.BytesIO(old)), written)
    assert np.asarray(written).shape == PAINTED.shape
