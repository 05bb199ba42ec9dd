"""Decoding of wire strings that never raises.

Names come from the network and may hold invalid UTF-16 or control characters.
They are kept exactly (lone surrogates survive as such, so JSON can escape them),
and `printable` makes them safe for a terminal.
"""

from __future__ import annotations


def utf16le(data: bytes | bytearray | memoryview) -> str:
    """UTF-16LE text; lone surrogates are kept, an odd trailing byte becomes U+FFFD."""
    raw = bytes(data)
    text = raw[: len(raw) & ~1].decode("utf-16-le", errors="surrogatepass")
    return text + "\ufffd" if len(raw) & 1 else text


def oem(data: bytes | bytearray | memoryview) -> str:
    """An OEM (8-bit) string; latin-1 maps every byte, so nothing is lost."""
    return bytes(data).decode("latin-1")


def printable(text: str) -> str:
    """`text` with control characters and lone surrogates escaped, for tables and logs."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape", errors="backslashreplace").decode("ascii"))
    return "".join(out)
