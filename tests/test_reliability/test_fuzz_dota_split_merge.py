"""Hypothesis fuzzing of the DOTA splitter and merger at image edges.

Drawn per example: the image size (often smaller than a patch), the patch
size and overlap, and rotated objects anywhere, on and over the image
borders. Properties:

* every object a patch keeps lies inside that patch (clipped when cut);
  an object is flagged truncated exactly when it is not inside the window;
* an object inside the image and no larger than the overlap is kept whole
  by at least one patch, so merging the patch labels (whole objects scored
  above clipped pieces) gives it back exactly: ``merge(split(gt)) == gt``;
* an object over the image border comes back at most once, mostly (70 %)
  inside the area the patches cover;
* clipped pieces stay inside their patch: currently not so (strict
  ``xfail``, see the reason).

Examples are derandomised and bounded by ``MAX_EXAMPLES``;
``MMRSKD_FUZZ_EXAMPLES`` overrides it.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from mmrskd.datasets.dota_split import sliding_windows, window_objects
from mmrskd.evaluation.functional import merge_patch_results
from test_reliability.conftest import fuzz_settings

MAX_EXAMPLES = 60
FUZZ = fuzz_settings(MAX_EXAMPLES)
TOL = 1e-2  # clipped corners go through cv2's float32 minAreaRect


def rotated_rect(cx, cy, w, h, angle):
    """(8,) corners of a rotated rectangle, clockwise on screen."""
    cos, sin = math.cos(angle), math.sin(angle)
    corners = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2),
                   (-w / 2, h / 2)):
        corners += [cx + dx * cos - dy * sin, cy + dx * sin + dy * cos]
    return corners


def extent(poly):
    pts = np.asarray(poly).reshape(4, 2)
    return pts.min(axis=0), pts.max(axis=0)


@st.composite
def scenes(draw):
    window = draw(st.sampled_from([64, 100, 128]))
    gap = draw(st.integers(window // 4, window // 2))
    width = draw(st.integers(16, 3 * window))
    height = draw(st.integers(16, 3 * window))
    objects = []
    for _ in range(draw(st.integers(1, 8))):
        # sizes up to the overlap; centres anywhere near the image,
        # borders and beyond included
        w = draw(st.floats(2, gap * 0.6))
        h = draw(st.floats(2, gap * 0.6))
        cx = draw(st.floats(-w, width + w))
        cy = draw(st.floats(-h, height + h))
        angle = draw(st.floats(-math.pi / 2, math.pi / 2))
        objects.append(rotated_rect(cx, cy, w, h, angle))
    return width, height, window, gap, np.array(objects)


def split(scene):
    """Windows and, per window, ``(inds, polys, truncated)``."""
    width, height, window, gap, polys = scene
    windows = sliding_windows(width, height, sizes=[window], gaps=[gap],
                              rates=[1.0])
    return windows, window_objects(polys, windows, iof_thr=0.7)


def outside_patch(poly, window):
    """How far (pixels) a polygon in window coordinates leaves the patch."""
    x1, y1, x2, y2 = window
    low, high = extent(poly)
    return max(0.0, *(-low), high[0] - (x2 - x1), high[1] - (y2 - y1))


@FUZZ
@given(scene=scenes())
def test_split_then_merge_at_image_edges(scene):
    width, height, _, _, polys = scene
    windows, objects = split(scene)
    covered = None
    patches = []
    for (x1, y1, x2, y2), (inds, win_polys, truncated) in zip(windows,
                                                            objects):
        window_box = box(x1, y1, x2, y2)
        covered = window_box.union(covered) if covered else window_box
        for i, poly, cut in zip(inds, win_polys, truncated):
            low, high = extent(polys[i])
            inside = (low >= (x1, y1)).all() and (high <= (x2, y2)).all()
            assert bool(cut) != inside
            if not cut:
                assert outside_patch(poly, (x1, y1, x2, y2)) <= TOL
        patches.append(dict(
            img_id=f'P0__{x2 - x1}__{x1}___{y1}', bboxes=win_polys,
            # whole objects outrank clipped pieces; one class per object so
            # that only duplicates of the same object are suppressed
            scores=np.where(truncated, 0.5, 1.0), labels=inds))
    merged = merge_patch_results(patches, 'qbox')[0]

    for i, poly in enumerate(polys):
        found = merged['bboxes'][merged['labels'] == i]
        low, high = extent(poly)
        if (low >= 0).all() and (high <= (width, height)).all():
            assert len(found) == 1, f'object {i} merged {len(found)} times'
            np.testing.assert_allclose(found[0], poly, atol=1e-4)
        elif len(found):
            assert len(found) == 1, f'object {i} merged {len(found)} times'
            piece = Polygon(found[0].reshape(4, 2))
            assert piece.intersection(covered).area >= 0.7 * piece.area


@pytest.mark.xfail(strict=True, reason=(
    'dota_split.clip_polygon: when the cut part of an object is not a '
    'quadrilateral, its minimum-area rectangle can leave the patch (e.g. a '
    'square turned 45 degrees over a corner: corners 0.38 px outside)'))
@FUZZ
@given(scene=scenes())
def test_clipped_objects_stay_inside_the_patch(scene):
    windows, objects = split(scene)
    for window, (_, win_polys, _) in zip(windows, objects):
        for poly in win_polys:
            assert outside_patch(poly, window) <= TOL, (poly, window)
