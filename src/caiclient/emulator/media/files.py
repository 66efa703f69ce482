"""Small, valid, deterministic media files the emulator serves, and magic-byte sniffing.

The live service returns real speech and generated pictures; offline tests only need files
that decoders accept and that differ by input. So:

- audio is silent MPEG-1 Layer III (mono, 48 kHz, 32 kbit/s: 96-byte frames of 1152
  samples, all side information zero, which decoders play as silence) behind an ID3v2.3
  tag whose title names what the file stands for;
- pictures are lossless WebP (VP8L) images of one colour: five one-symbol prefix codes, so
  the pixels cost zero bits and a file is 32 bytes whatever its size.
"""

from __future__ import annotations

import hashlib
import struct

__all__ = [
    "AUDIO_TYPES",
    "IMAGE_TYPES",
    "colour_for",
    "silent_mp3",
    "sniff_audio",
    "sniff_image",
    "solid_webp",
]

IMAGE_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
}
"""Image types accepted by uploads, with the file extension the emulator gives them."""

AUDIO_TYPES: dict[str, str] = {
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/mp4": "m4a",
}
"""Audio types accepted by voice uploads."""


def sniff_image(data: bytes) -> str | None:
    """The MIME type of an image by its magic bytes, or None when it is not one we accept."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_audio(data: bytes) -> str | None:
    """The MIME type of an audio file by its magic bytes, or None."""
    if data.startswith(b"ID3") or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"fLaC"):
        return "audio/flac"
    if len(data) >= 8 and data[4:8] == b"ftyp":
        return "audio/mp4"
    return None


# ---- audio ------------------------------------------------------------------------------

# MPEG-1 Layer III, no CRC; 32 kbit/s, 48 kHz, no padding; mono, "original" bit set.
_FRAME_HEADER = b"\xff\xfb\x14\xc4"
_FRAME_BYTES = 144 * 32_000 // 48_000  # 96, exact at 48 kHz: no padding slots needed
_SILENT_FRAME = _FRAME_HEADER + bytes(_FRAME_BYTES - len(_FRAME_HEADER))


def _syncsafe(n: int) -> bytes:
    return bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))


def _id3_title(title: str) -> bytes:
    text = b"\x00" + title.encode("latin-1", "replace")  # 0 = ISO-8859-1 text
    frame = b"TIT2" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    return b"ID3\x03\x00\x00" + _syncsafe(len(frame)) + frame


def silent_mp3(key: str, *, title: str) -> bytes:
    """A silent MP3 of 10 to 40 frames (0.24 to 0.96 s), the count a function of ``key``."""
    frames = 10 + hashlib.sha256(key.encode("utf-8")).digest()[0] % 31
    return _id3_title(title) + _SILENT_FRAME * frames


# ---- images -----------------------------------------------------------------------------


def colour_for(text: str) -> tuple[int, int, int]:
    """A stable RGB colour for ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return digest[0], digest[1], digest[2]


class _Bits:
    """LSB-first bit packing, as VP8L reads its stream."""

    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def put(self, value: int, width: int) -> None:
        self.value |= (value & ((1 << width) - 1)) << self.count
        self.count += width

    def to_bytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def _one_symbol_code(bits: _Bits, symbol: int) -> None:
    bits.put(1, 1)  # simple code
    bits.put(0, 1)  # one symbol
    bits.put(1, 1)  # the symbol takes 8 bits
    bits.put(symbol, 8)


def solid_webp(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A ``size`` x ``size`` lossless WebP filled with one opaque colour."""
    if not 1 <= size <= 16384:
        raise ValueError(f"size must be 1..16384, got {size}")
    red, green, blue = rgb
    bits = _Bits()
    bits.put(size - 1, 14)
    bits.put(size - 1, 14)
    bits.put(0, 1)  # alpha_is_used: no, the picture is opaque
    bits.put(0, 3)  # version 0
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta prefix codes
    # Prefix codes in the order green, red, blue, alpha, distance.
    for symbol in (green, red, blue, 255):
        _one_symbol_code(bits, symbol)
    bits.put(1, 1)  # distance: simple code,
    bits.put(0, 1)  # one symbol,
    bits.put(0, 1)  # of one bit:
    bits.put(0, 1)  # symbol 0 (never used: every pixel is a literal)
    payload = b"\x2f" + bits.to_bytes()
    # The size field excludes the pad byte that keeps RIFF chunks at even offsets.
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk
