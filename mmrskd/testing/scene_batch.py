"""Training batches of rendered synthetic DOTA scenes: many small objects."""
import numpy as np
import torch

from mmrskd.datasets.synthetic.scene import render_scene
from mmrskd.testing.tiny_detectors import preprocess_batch

# Vehicles and ships, DOTA's most numerous classes, drawn most often; a
# class listed n times is drawn n times as often.
DENSE_DOTA_CLASSES = ('small-vehicle', ) * 3 + ('large-vehicle', ) * 2 + (
    'ship', ) * 2 + ('plane', 'storage-tank', 'harbor')


def scene_batch(model, num_images=2, size=256, num_objects=32,
                num_classes=3, rotated=True, seed=0):
    """A preprocessed training batch of synthetic DOTA scenes.

    Every image is rendered by the synthetic dataset generator
    (:func:`mmrskd.datasets.synthetic.scene.render_scene`, the scenes it
    writes to disk) with up to ``num_objects`` non-overlapping objects of
    the generator's DOTA sizes: at 256 px the default 32 objects have a
    median length of about 23 px (small vehicles 9-16 px), the dense end of
    DOTA (a parking lot or a harbour). The GT are the drawn oriented boxes,
    as the DOTA pipeline gives them: the quadrilateral converted to an
    ``rbox`` for rotated detectors, or its axis-aligned hull.

    Args:
        model (nn.Module): has the ``data_preprocessor`` to apply.
        num_images (int): batch size.
        size (int): image side in pixels.
        num_objects (int): objects wanted per image (fewer when they do not
            fit).
        num_classes (int): labels are the class index modulo this.
        rotated (bool): ``RotatedBoxes`` GT, else ``HorizontalBoxes``.
        seed (int): image ``i`` is rendered from
            ``numpy.random.default_rng([seed, i])``.

    Returns:
        tuple: ``(inputs (N, 3, H, W) Tensor, list[DetDataSample])``.
    """
    from mmengine.structures import InstanceData
    from mmrotate.structures.bbox import QuadriBoxes

    names = sorted(set(DENSE_DOTA_CLASSES))
    images, batch_gt_instances = [], []
    for index in range(num_images):
        image, objects = render_scene(
            np.random.default_rng([seed, index]), size, size,
            DENSE_DOTA_CLASSES, num_objects)
        corners = torch.tensor(
            np.array([obj.corners().ravel() for obj in objects],
                     dtype=np.float32).reshape(-1, 8))
        boxes = QuadriBoxes(corners).convert_to(
            'rbox' if rotated else 'hbox')
        labels = torch.tensor(
            [names.index(obj.name) % num_classes for obj in objects],
            dtype=torch.long)
        batch_gt_instances.append(InstanceData(bboxes=boxes, labels=labels))
        images.append(torch.from_numpy(image).permute(2, 0, 1).contiguous())
    return preprocess_batch(model, images, batch_gt_instances)
