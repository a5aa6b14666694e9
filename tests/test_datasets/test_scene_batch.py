"""mmrskd.testing.scene_batch: GT of rendered synthetic DOTA scenes."""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmrotate.structures.bbox import RotatedBoxes

from mmrskd.datasets.synthetic.scene import render_scene
from mmrskd.registry import MODELS
from mmrskd.testing import scene_batch, tiny_rotated_retinanet_cfg
from mmrskd.testing.scene_batch import DENSE_DOTA_CLASSES


@pytest.fixture(scope='module')
def model():
    return MODELS.build(tiny_rotated_retinanet_cfg())


def test_boxes_are_the_rendered_objects(model):
    inputs, samples = scene_batch(model, num_images=2, size=128,
                                  num_objects=12, num_classes=3, seed=4)
    assert inputs.shape == (2, 3, 128, 128)
    names = sorted(set(DENSE_DOTA_CLASSES))
    for index, sample in enumerate(samples):
        image, objects = render_scene(np.random.default_rng([4, index]),
                                      128, 128, DENSE_DOTA_CLASSES, 12)
        gt = sample.gt_instances
        assert isinstance(gt.bboxes, RotatedBoxes)
        assert 6 <= len(gt) == len(objects) <= 12
        boxes = gt.bboxes.tensor
        for box, obj in zip(boxes.tolist(), objects):
            assert box[:2] == pytest.approx([obj.cx, obj.cy], abs=1e-3)
            # le90 may swap the sides (and turn the angle by 90 degrees)
            assert sorted(box[2:4]) == pytest.approx(
                sorted([obj.w, obj.h]), abs=1e-3)
        assert gt.labels.tolist() == [
            names.index(obj.name) % 3 for obj in objects]
        # the inputs are the rendered image through the preprocessor
        rgb = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1)
        mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
        std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
        torch.testing.assert_close(inputs[index], (rgb - mean) / std)


def test_horizontal_boxes_are_the_hulls_of_the_objects(model):
    _, samples = scene_batch(model, num_images=1, size=128, num_objects=8,
                             rotated=False, seed=1)
    _, objects = render_scene(np.random.default_rng([1, 0]), 128, 128,
                              DENSE_DOTA_CLASSES, 8)
    boxes = samples[0].gt_instances.bboxes
    assert isinstance(boxes, HorizontalBoxes)
    hulls = [np.concatenate([o.corners().min(0), o.corners().max(0)])
             for o in objects]
    np.testing.assert_allclose(boxes.tensor.numpy(), np.array(hulls),
                               atol=1e-3)


def test_default_density_is_many_small_objects(model):
    _, samples = scene_batch(model, num_images=2, size=256)
    lengths = torch.cat([s.gt_instances.bboxes.tensor[:, 2:4].amax(1)
                         for s in samples])
    assert len(lengths) >= 50
    assert 15 < lengths.median() < 30
