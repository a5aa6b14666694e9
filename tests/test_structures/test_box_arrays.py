"""Box typing and conversion shared by the datasets, evaluation and
models."""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmrotate.structures.bbox import QuadriBoxes, RotatedBoxes

from mmrskd.structures import as_box_array, check_box_type, to_box_type
from mmrskd.utils import MMRSKDError

SQUARE = {'hbox': [0., 0., 2., 2.], 'rbox': [1., 1., 2., 2., 0.],
          'qbox': [0., 0., 2., 0., 2., 2., 0., 2.]}


@pytest.mark.parametrize('src', sorted(SQUARE))
@pytest.mark.parametrize('dst', sorted(SQUARE))
def test_as_box_array_types_plain_boxes_by_their_last_dim(src, dst):
    out = as_box_array([SQUARE[src]], dst)
    assert out.dtype == np.float64 and out.shape == (1, len(SQUARE[dst]))
    # corner order and angle depend on the conversion; the square does not
    np.testing.assert_allclose(as_box_array(out, 'hbox')[0], SQUARE['hbox'],
                               atol=1e-5)


def test_as_box_array_refuses_an_untyped_shape():
    with pytest.raises(MMRSKDError, match=r'gt has shape \(1, 6\)'):
        as_box_array(np.zeros((1, 6)), 'hbox', 'gt')


def test_check_box_type_names_the_choices():
    with pytest.raises(MMRSKDError, match="metric.box_type='obb'"):
        check_box_type('obb', 'metric.box_type')


@pytest.mark.parametrize('box_type,box_class',
                         [('hbox', HorizontalBoxes), ('rbox', RotatedBoxes),
                          ('qbox', QuadriBoxes)])
def test_to_box_type_wraps_tensors_by_their_last_dim(box_type, box_class):
    boxes = torch.tensor([SQUARE[box_type]], dtype=torch.float16)
    wrapped = to_box_type(boxes)
    assert type(wrapped) is box_class
    assert wrapped.tensor.dtype == torch.float32
    assert type(to_box_type(wrapped)) is box_class


def test_to_box_type_refuses_what_is_not_a_box_set():
    with pytest.raises(MMRSKDError, match=r'gt_instances.bboxes of type '
                       r'Tensor and shape \(2, 6\) is not a box set'):
        to_box_type(torch.zeros(2, 6))
