"""Helpers shared by the annotation parsers and datasets of mmrskd.

Every problem with user data is reported as one line that names the file
(and line, where there is one) and says how to fix it:

* :class:`InvalidAnnotationError` for a corrupt annotation (unparseable line,
  too few coordinates, bad XML, unknown class). Parsers either raise it or,
  with ``on_invalid='skip'``, log it as a warning and drop the object.
* :class:`~mmrskd.utils.MMRSKDError` for everything else (missing paths).
"""
import colorsys
import logging
import os.path as osp
import xml.etree.ElementTree as ET
import math
from typing import Dict, List, Tuple
from xml.parsers import expat

from mmengine.logging import print_log
from PIL import Image, UnidentifiedImageError

from mmrskd.utils import MMRSKDError

ON_INVALID_CHOICES = ('raise', 'skip')


class InvalidAnnotationError(MMRSKDError):
    """An annotation file or object that cannot be read correctly."""


def check_on_invalid(on_invalid: str) -> None:
    """Validate an ``on_invalid`` option."""
    if on_invalid not in ON_INVALID_CHOICES:
        raise MMRSKDError(f'on_invalid={on_invalid!r} is not supported; use '
                          "'raise' (stop at the first bad annotation) or "
                          "'skip' (warn and drop it)")


def log_warning(message: str) -> None:
    """Log ``message`` as a warning through mmengine's current logger."""
    print_log(message, logger='current', level=logging.WARNING)


def report_invalid(message: str, on_invalid: str) -> None:
    """Raise ``message`` or, with ``on_invalid='skip'``, log it as a warning.

    Args:
        message (str): one line naming the file (and line) at fault.
        on_invalid (str): ``'raise'`` or ``'skip'``.
    """
    if on_invalid == 'raise':
        raise InvalidAnnotationError(
            f"{message} (fix the file, or set on_invalid='skip' in the "
            'dataset config to drop such entries with a warning)')
    log_warning(f'{message}; skipped (on_invalid=skip)')


def require_dir(path: str, what: str) -> None:
    """Fail with a one-line error if ``path`` is not a directory."""
    if not osp.isdir(path):
        raise MMRSKDError(f'{what} {path} does not exist; check data_root and '
                          'the paths in the dataset config')


def require_file(path: str, what: str) -> None:
    """Fail with a one-line error if ``path`` is not a file."""
    if not osp.isfile(path):
        raise MMRSKDError(f'{what} {path} does not exist; check data_root and '
                          'the paths in the dataset config')


def read_image_size(path: str) -> Tuple[int, int]:
    """Read ``(width, height)`` from an image header without decoding it.

    Raises:
        MMRSKDError: the file is missing or not a readable image.
    """
    require_file(path, 'image')
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as err:
        raise MMRSKDError(f'image {path} cannot be read ({err}); replace the '
                          'file or remove it from the split') from None


def parse_xml_with_lines(path: str) -> Tuple[ET.Element, Dict[ET.Element,
                                                              int]]:
    """Parse an XML file and remember where each element starts.

    :mod:`xml.etree.ElementTree` drops line numbers, which every error message
    about an object needs.

    Args:
        path (str): the XML file.

    Returns:
        tuple: the root element and a dict ``element -> line number``.

    Raises:
        InvalidAnnotationError: the file is not well-formed XML.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    lines = {}

    def start(tag, attrs):
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        with open(path, 'rb') as f:
            parser.ParseFile(f)
        root = builder.close()
    except expat.ExpatError as err:
        raise InvalidAnnotationError(
            f'{path}:{err.lineno}: not well-formed XML '
            f'({expat.ErrorString(err.code)}); fix or re-download the '
            'file') from None
    return root, lines


def xml_text(elem: ET.Element, tag: str, path: str, line: int) -> str:
    """The stripped text of the child ``tag`` of ``elem``.

    Raises:
        InvalidAnnotationError: the child is missing or empty.
    """
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise InvalidAnnotationError(
            f'{path}:{line}: <{elem.tag}> has no <{tag}> value')
    return child.text.strip()


def xml_float(elem: ET.Element, tag: str, path: str, line: int) -> float:
    """The child ``tag`` of ``elem`` as a finite float.

    Raises:
        InvalidAnnotationError: the child is missing or not a finite number.
    """
    text = xml_text(elem, tag, path, line)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidAnnotationError(
            f'{path}:{line}: <{tag}>{text}</{tag}> is not a finite number')
    return value


def read_id_list(path: str, what: str) -> List[str]:
    """Read a split file: one image id per line, blank lines ignored.

    Raises:
        MMRSKDError: the file is missing or lists no id.
    """
    require_file(path, what)
    with open(path, encoding='utf-8') as f:
        ids = [line.strip() for line in f if line.strip()]
    if not ids:
        raise MMRSKDError(f'{what} {path} lists no image id; regenerate the '
                          'split file')
    return ids


def make_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """Distinct RGB colours for visualisation: hues spaced by the golden
    angle, so any prefix of the palette stays well separated.

    Args:
        num_classes (int): number of colours.

    Returns:
        list[tuple[int, int, int]]: RGB colours in 0..255.
    """
    palette = []
    for i in range(num_classes):
        hue = (i * 0.618033988749895) % 1.0
        rgb = colorsys.hsv_to_rgb(hue, 0.85 if i % 2 else 0.65, 0.95)
        palette.append(tuple(int(round(255 * c)) for c in rgb))
    return palette
