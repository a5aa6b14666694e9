"""Hypothesis fuzzing of the annotation parsers (DOTA, NWPU VHR-10, DIOR /
DIOR-R, HRSC2016).

Each parser either returns well-formed boxes or raises a one-line
:class:`~mmrskd.datasets.InvalidAnnotationError` (an ``MMRSKDError``) that
names the file, and the line for text formats; never another exception,
never a wrong box:

* random bytes;
* files of valid lines with corrupted ones mixed in (for the text formats
  the result is compared with a reference parser written here: the boxes of
  the valid lines, or an error naming the first invalid line);
* a valid file cut at any byte: the boxes of the complete objects before
  the cut, or an error.

Examples are derandomised and bounded by ``MAX_EXAMPLES`` per test;
``MMRSKD_FUZZ_EXAMPLES`` overrides it.
"""
import math
import os.path as osp
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrskd.datasets import (InvalidAnnotationError, parse_dior_xml,
                             parse_dota_txt, parse_hrsc_xml, parse_nwpu_txt)
from mmrskd.datasets.hrsc import HRSC_CLASS_IDS
from mmrskd.utils import MMRSKDError
from test_reliability.conftest import fuzz_settings

MAX_EXAMPLES = 60
FUZZ = fuzz_settings(MAX_EXAMPLES)
DOTA_CLASSES = ('plane', 'ship', 'small-vehicle')
DIOR_CLASSES = ('airplane', 'ship', 'vehicle')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp('annotations')


def write(folder, name, data):
    path = osp.join(str(folder), name)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def parse_or_error(parse, path, *args, **kwargs):
    """The parser's result, or its error message after checking that the
    error is one line naming the file."""
    try:
        return parse(path, *args, **kwargs), None
    except InvalidAnnotationError as err:
        message = str(err)
    except MMRSKDError as err:  # pragma: no cover - reported as failure
        pytest.fail(f'{type(err).__name__} instead of InvalidAnnotationError:'
                    f' {err}')
    assert '\n' not in message, message
    assert path in message, message
    return None, message


# ---------------------------------------------------------------- strategies
coordinates = st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: round(v, 2))
bad_numbers = st.sampled_from(['nan', 'inf', '-inf', '1e999', 'x', '1,5',
                               '--1', '0x10', ''])


@st.composite
def dota_line(draw):
    poly = [draw(coordinates) for _ in range(8)]
    name = draw(st.sampled_from(DOTA_CLASSES))
    tokens = [repr(v) for v in poly] + [name]
    if draw(st.booleans()):
        tokens.append(str(draw(st.integers(0, 2))))
    return ' '.join(tokens), poly, name


@st.composite
def corrupted(draw, line):
    """A corruption of one valid line."""
    tokens = line.split(' ')
    kind = draw(st.sampled_from(['cut', 'drop', 'extra', 'number', 'bytes']))
    if kind == 'cut':
        return line[:draw(st.integers(0, len(line) - 1))]
    if kind == 'drop':
        del tokens[draw(st.integers(0, len(tokens) - 1))]
    elif kind == 'extra':
        tokens.insert(draw(st.integers(0, len(tokens))), draw(coordinates)
                      .__repr__())
    elif kind == 'number':
        tokens[draw(st.integers(0, min(7, len(tokens) - 1)))] = draw(
            bad_numbers)
    else:
        return line + draw(st.text(alphabet='\x00\x07\x7f\ufffd#@ é\t',
                                   min_size=1, max_size=5))
    return ' '.join(tokens)


# ----------------------------------------------------------- reference DOTA
def reference_dota_line(line):
    """``(poly, name)`` of a valid DOTA object line, else None."""
    tokens = line.split()
    if len(tokens) not in (9, 10):
        return None
    try:
        poly = [float(v) for v in tokens[:8]]
        if len(tokens) == 10:
            int(tokens[9])
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in poly) or \
            tokens[8] not in DOTA_CLASSES:
        return None
    return poly, tokens[8]


@FUZZ
@given(data=st.binary(max_size=300))
def test_dota_random_bytes(folder, data):
    path = write(folder, 'random.txt', data)
    result, error = parse_or_error(parse_dota_txt, path, DOTA_CLASSES)
    if error is None:
        polys, names, difficulties = result
        assert polys.shape == (len(names), 8) and np.isfinite(polys).all()
        assert set(names) <= set(DOTA_CLASSES)
    else:
        assert re.search(re.escape(path) + r':\d+: ', error)


@FUZZ
@given(data=st.data())
def test_dota_corrupted_lines_match_the_reference(folder, data):
    lines = data.draw(st.lists(dota_line(), min_size=1, max_size=5))
    texts = [text for text, _, _ in lines]
    for i in data.draw(st.sets(st.integers(0, len(texts) - 1), max_size=2)):
        texts[i] = data.draw(corrupted(texts[i]))
    header = data.draw(st.sampled_from(['', 'imagesource:GoogleEarth\n'
                                         'gsd:0.146\n']))
    path = write(folder, 'corrupted.txt',
                 (header + '\n'.join(texts) + '\n').encode())
    result, error = parse_or_error(parse_dota_txt, path, DOTA_CLASSES)

    offset = header.count('\n')
    expected, first_bad = [], None
    for line_no, text in enumerate(texts, start=offset + 1):
        if not text.split():
            continue  # blank lines are allowed
        parsed = reference_dota_line(text)
        if parsed is None:
            first_bad = line_no
            break
        expected.append(parsed)
    if first_bad is not None:
        assert error is not None and f'{path}:{first_bad}: ' in error, error
    else:
        assert error is None, error
        polys, names, _ = result
        assert names == [name for _, name in expected]
        np.testing.assert_allclose(
            polys, np.array([p for p, _ in expected],
                            np.float32).reshape(-1, 8))


@FUZZ
@given(lines=st.lists(dota_line(), min_size=1, max_size=4), data=st.data())
def test_dota_cut_file_gives_complete_boxes_or_an_error(folder, lines, data):
    text = ''.join(f'{line}\n' for line, _, _ in lines)
    cut = data.draw(st.integers(0, len(text)))
    path = write(folder, 'cut.txt', text[:cut].encode())
    result, error = parse_or_error(parse_dota_txt, path, DOTA_CLASSES)
    if error is not None:
        return
    polys, names, _ = result
    k = len(names)
    assert names == [name for _, _, name in lines[:k]]
    np.testing.assert_allclose(
        polys, np.array([poly for _, poly, _ in lines[:k]],
                        np.float32).reshape(-1, 8))


# ------------------------------------------------------------------- NWPU
@st.composite
def nwpu_line(draw):
    x1, y1 = draw(st.integers(0, 900)), draw(st.integers(0, 900))
    x2, y2 = x1 + draw(st.integers(1, 99)), y1 + draw(st.integers(1, 99))
    number = draw(st.integers(1, 10))
    pad = draw(st.sampled_from(['', ' ']))
    return (f'({pad}{x1},{y1}),({x2},{y2}),{number}{pad}',
            [x1, y1, x2, y2], number)


def reference_nwpu_line(line):
    number = r'\s*([-+]?\d+(?:\.\d*)?)\s*'
    match = re.fullmatch(rf'\({number},{number}\)\s*,\s*\({number},{number}\)'
                         r'\s*,\s*(\d+)\s*', line)
    if match is None:
        return None
    box = [float(v) for v in match.groups()[:4]]
    number = int(match.group(5))
    if not 1 <= number <= 10 or box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box, number


@FUZZ
@given(data=st.binary(max_size=300))
def test_nwpu_random_bytes(folder, data):
    path = write(folder, 'random_nwpu.txt', data)
    result, error = parse_or_error(parse_nwpu_txt, path)
    if error is None:
        boxes, numbers = result
        assert boxes.shape == (len(numbers), 4) and np.isfinite(boxes).all()
        assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
                ).all()
        assert ((numbers >= 1) & (numbers <= 10)).all()
    else:
        assert re.search(re.escape(path) + r':\d+: ', error)


@FUZZ
@given(data=st.data())
def test_nwpu_corrupted_lines_match_the_reference(folder, data):
    lines = data.draw(st.lists(nwpu_line(), min_size=1, max_size=5))
    texts = [text for text, _, _ in lines]
    for i in data.draw(st.sets(st.integers(0, len(texts) - 1), max_size=2)):
        text = texts[i]
        kind = data.draw(st.sampled_from(['cut', 'char', 'class']))
        if kind == 'cut':
            texts[i] = text[:data.draw(st.integers(0, len(text) - 1))]
        elif kind == 'char':
            at = data.draw(st.integers(0, len(text) - 1))
            texts[i] = text[:at] + data.draw(
                st.sampled_from(list('x.-;( )0'))) + text[at + 1:]
        else:
            texts[i] = re.sub(r',\d+(\s*)$', r',0\1', text)
    path = write(folder, 'corrupted_nwpu.txt',
                 ('\n'.join(texts) + '\n').encode())
    result, error = parse_or_error(parse_nwpu_txt, path)
    expected, first_bad = [], None
    for line_no, text in enumerate(texts, start=1):
        if not text.strip():
            continue
        parsed = reference_nwpu_line(text)
        if parsed is None:
            first_bad = line_no
            break
        expected.append(parsed)
    if first_bad is not None:
        assert error is not None and f'{path}:{first_bad}: ' in error, error
    else:
        assert error is None, error
        boxes, numbers = result
        assert numbers.tolist() == [n for _, n in expected]
        np.testing.assert_array_equal(
            boxes, np.array([b for b, _ in expected], np.float32)
            .reshape(-1, 4))


@FUZZ
@given(lines=st.lists(nwpu_line(), min_size=1, max_size=4), data=st.data())
def test_nwpu_cut_file_gives_complete_boxes_or_an_error(folder, lines, data):
    text = ''.join(f'{line}\n' for line, _, _ in lines)
    cut = data.draw(st.integers(0, len(text)))
    path = write(folder, 'cut_nwpu.txt', text[:cut].encode())
    result, error = parse_or_error(parse_nwpu_txt, path)
    if error is not None:
        return
    boxes, numbers = result
    k = len(numbers)
    np.testing.assert_array_equal(
        boxes, np.array([box for _, box, _ in lines[:k]], np.float32)
        .reshape(-1, 4))
    # a class number cut after its first digit ("10" -> "1") at the very end
    # of a file cannot be told from a complete one: only the last label of
    # a cut file may differ
    complete = max(k - 1, 0) if cut < len(text) else k
    assert numbers[:complete].tolist() == [n for _, _, n in lines[:complete]]


# -------------------------------------------------------------- DIOR, HRSC
def dior_xml(objects, box_type):
    tags = ('xmin', 'ymin', 'xmax', 'ymax') if box_type == 'hbox' else (
        'x_left_top', 'y_left_top', 'x_right_top', 'y_right_top',
        'x_right_bottom', 'y_right_bottom', 'x_left_bottom', 'y_left_bottom')
    box_tag = 'bndbox' if box_type == 'hbox' else 'robndbox'
    body = ''.join(
        f'<object><name>{name}</name><difficult>{difficult}</difficult>'
        f'<{box_tag}>' + ''.join(f'<{t}>{v}</{t}>' for t, v in zip(tags, box))
        + f'</{box_tag}></object>\n' for name, difficult, box in objects)
    return ('<annotation>\n<size><width>800</width><height>600</height>'
            f'</size>\n{body}</annotation>\n')


@st.composite
def dior_objects(draw, box_type):
    objects = []
    for _ in range(draw(st.integers(0, 3))):
        if box_type == 'hbox':
            x1, y1 = draw(st.integers(0, 700)), draw(st.integers(0, 500))
            box = [x1, y1, x1 + draw(st.integers(1, 99)),
                   y1 + draw(st.integers(1, 99))]
        else:
            box = [draw(coordinates) for _ in range(8)]
        objects.append((draw(st.sampled_from(DIOR_CLASSES)),
                        draw(st.integers(0, 1)), box))
    return objects


def hrsc_xml(objects):
    body = ''.join(
        f'<HRSC_Object><Class_ID>{cid}</Class_ID><difficult>0</difficult>' +
        ''.join(f'<{t}>{v}</{t}>' for t, v in zip(
            ('mbox_cx', 'mbox_cy', 'mbox_w', 'mbox_h', 'mbox_ang'), rbox)) +
        '</HRSC_Object>\n' for cid, rbox in objects)
    return ('<HRSC_Image><Img_SizeWidth>1172</Img_SizeWidth>'
            '<Img_SizeHeight>816</Img_SizeHeight>\n<HRSC_Objects>\n'
            f'{body}</HRSC_Objects>\n</HRSC_Image>\n')


@st.composite
def hrsc_objects(draw):
    return [(draw(st.sampled_from(sorted(HRSC_CLASS_IDS))),
             [draw(coordinates), draw(coordinates),
              draw(st.integers(1, 900)), draw(st.integers(1, 900)),
              round(draw(st.floats(-1.6, 1.6)), 4)])
            for _ in range(draw(st.integers(0, 3)))]


def parse_xml(kind, path):
    if kind == 'hrsc':
        return parse_or_error(parse_hrsc_xml, path, sorted(HRSC_CLASS_IDS))
    return parse_or_error(parse_dior_xml, path, kind, DIOR_CLASSES)


def xml_boxes(kind, result):
    return result['rboxes'] if kind == 'hrsc' else result['boxes']


def xml_for(kind, draw):
    if kind == 'hrsc':
        objects = draw(hrsc_objects())
        return hrsc_xml(objects), [rbox for _, rbox in objects]
    objects = draw(dior_objects(kind))
    return dior_xml(objects, kind), [box for _, _, box in objects]


XML_KINDS = ['hbox', 'qbox', 'hrsc']
BOX_DIMS = dict(hbox=4, qbox=8, hrsc=5)


@pytest.mark.parametrize('kind', XML_KINDS)
@FUZZ
@given(data=st.binary(max_size=300))
def test_xml_random_bytes(folder, kind, data):
    path = write(folder, f'random_{kind}.xml', data)
    result, error = parse_xml(kind, path)
    if error is None:
        assert np.isfinite(xml_boxes(kind, result)).all()


@pytest.mark.parametrize('kind', XML_KINDS)
@FUZZ
@given(data=st.data())
def test_xml_cut_file_is_an_error_or_complete(folder, kind, data):
    text, boxes = xml_for(kind, data.draw)
    cut = data.draw(st.integers(0, len(text)))
    path = write(folder, f'cut_{kind}.xml', text[:cut].encode())
    result, error = parse_xml(kind, path)
    if cut < len(text.rstrip()):
        assert error is not None  # the root element is never closed
    else:
        assert error is None, error
        np.testing.assert_allclose(
            xml_boxes(kind, result),
            np.array(boxes, np.float32).reshape(len(boxes), BOX_DIMS[kind]))


@pytest.mark.parametrize('kind', XML_KINDS)
@FUZZ
@given(data=st.data())
def test_xml_bad_values_name_the_file_and_line(folder, kind, data):
    text, boxes = xml_for(kind, data.draw)
    values = re.findall(r'>(-?[\d.]+)<', text)
    if not values:
        return
    bad = data.draw(st.sampled_from(values))
    replacement = data.draw(bad_numbers)
    text = text.replace(f'>{bad}<', f'>{replacement}<', 1)
    path = write(folder, f'bad_{kind}.xml', text.encode())
    result, error = parse_xml(kind, path)
    if error is None:
        assert np.isfinite(xml_boxes(kind, result)).all()
    else:
        assert re.search(re.escape(path) + r':\d+: ', error), error


@pytest.mark.parametrize('kind', ['dota', 'nwpu'] + XML_KINDS)
@FUZZ
@given(data=st.data())
def test_valid_file_with_random_bytes_replaced(folder, kind, data):
    if kind == 'dota':
        text = ''.join(f'{line}\n' for line, _, _ in data.draw(
            st.lists(dota_line(), min_size=1, max_size=4)))
    elif kind == 'nwpu':
        text = ''.join(f'{line}\n' for line, _, _ in data.draw(
            st.lists(nwpu_line(), min_size=1, max_size=4)))
    else:
        text, _ = xml_for(kind, data.draw)
    raw = bytearray(text.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(
            st.integers(0, 255))
    path = write(folder, f'mutated_{kind}', bytes(raw))
    if kind == 'dota':
        result, error = parse_or_error(parse_dota_txt, path, DOTA_CLASSES)
        boxes = None if result is None else result[0]
    elif kind == 'nwpu':
        result, error = parse_or_error(parse_nwpu_txt, path)
        boxes = None if result is None else result[0]
    else:
        result, error = parse_xml(kind, path)
        boxes = None if result is None else xml_boxes(kind, result)
    if error is None:
        assert np.isfinite(boxes).all()
    elif kind in ('dota', 'nwpu'):
        assert re.search(re.escape(path) + r':\d+: ', error), error
