"""The common base of the mmrskd remote-sensing detection datasets."""
import logging
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence

from mmdet.datasets import BaseDetDataset
from mmengine.logging import print_log

from mmrskd.datasets.utils import check_on_invalid, require_dir
from mmrskd.utils import MMRSKDError


class BaseRSDataset(BaseDetDataset):
    """Base of the remote-sensing datasets: class subsets, checks, filters.

    Subclasses set ``METAINFO['classes']`` to the dataset's full class list
    (its *vocabulary*, in the order published models use) and implement
    :meth:`load_data_list`, which yields entries of the form::

        dict(img_path=str, img_id=str, height=int, width=int,
             instances=[dict(bbox=list[float], bbox_label=int,
                             ignore_flag=0 | 1), ...])

    * ``metainfo=dict(classes=(...))`` may select a subset of the vocabulary,
      in any order; labels follow that order. Objects of vocabulary classes
      left out are dropped (one INFO line says how many); a name outside the
      vocabulary in a label file is an invalid annotation.
    * ``on_invalid='raise'`` (default) stops at the first corrupt annotation
      with an error naming the file and line; ``'skip'`` logs a warning and
      drops the object (or the whole file when the file itself is corrupt).
    * ``filter_cfg=dict(filter_empty_gt=True)`` drops images without objects
      from training sets; they are kept otherwise (background images) and
      always in ``test_mode``.

    Args:
        on_invalid (str): ``'raise'`` or ``'skip'``. Defaults to ``'raise'``.
        **kwargs: passed to :class:`mmdet.datasets.BaseDetDataset`.
    """

    def __init__(self, *args, on_invalid: str = 'raise', **kwargs) -> None:
        check_on_invalid(on_invalid)
        self.on_invalid = on_invalid
        self._dropped_classes = Counter()
        super().__init__(*args, **kwargs)

    @classmethod
    def _load_metainfo(cls, metainfo: Optional[Mapping] = None) -> dict:
        """Keep each class's palette colour when a subset is selected."""
        merged = super()._load_metainfo(metainfo)
        user_set_palette = metainfo is not None and 'palette' in metainfo
        vocabulary = cls.METAINFO.get('classes', ())
        palette = cls.METAINFO.get('palette')
        if palette and not user_set_palette and all(
                name in vocabulary for name in merged['classes']):
            merged['palette'] = [
                palette[vocabulary.index(name)] for name in merged['classes']
            ]
        return merged

    @property
    def vocabulary(self) -> Sequence[str]:
        """Every class name the annotation files may contain."""
        return self.METAINFO['classes']

    def label_map(self) -> Dict[str, int]:
        """Map the selected class names to labels.

        Raises:
            MMRSKDError: a selected class is not in the vocabulary.
        """
        classes = self.metainfo.get('classes')
        if not classes:
            raise MMRSKDError(f'{type(self).__name__}: metainfo.classes is '
                              'empty; remove it to use all classes')
        unknown = [name for name in classes if name not in self.vocabulary]
        if unknown:
            raise MMRSKDError(
                f'{type(self).__name__}: metainfo.classes contains '
                f'{unknown}, which are not classes of this dataset; choose '
                f'from {tuple(self.vocabulary)}')
        return {name: label for label, name in enumerate(classes)}

    def check_data_root(self) -> None:
        """Fail early with a one-line error when ``data_root`` is missing."""
        if self.data_root:
            require_dir(self.data_root, f'{type(self).__name__}: data_root')

    def make_instances(self, boxes: Sequence, names: Sequence[str],
                       ignore_flags: Sequence[int],
                       label_map: Dict[str, int]) -> List[dict]:
        """Turn parsed objects into ``instances`` entries.

        Objects of classes outside ``label_map`` are dropped and counted.

        Args:
            boxes (Sequence): per-object boxes (4 or 8 numbers each).
            names (Sequence[str]): per-object class names (vocabulary names).
            ignore_flags (Sequence[int]): per-object 0/1 flags.
            label_map (dict): selected class name to label.

        Returns:
            list[dict]: the ``instances`` of one image.
        """
        instances = []
        for box, name, ignore in zip(boxes, names, ignore_flags):
            if name not in label_map:
                self._dropped_classes[name] += 1
                continue
            instances.append(
                dict(bbox=[float(v) for v in box],
                     bbox_label=label_map[name],
                     ignore_flag=int(ignore)))
        return instances

    def full_init(self) -> None:
        """Load, filter and serialize the data list (see mmengine)."""
        if self._fully_initialized:
            return
        super().full_init()
        if self._dropped_classes:
            dropped = dict(sorted(self._dropped_classes.items()))
            print_log(
                f'{type(self).__name__}: dropped objects of classes not in '
                f'metainfo.classes: {dropped}',
                logger='current', level=logging.INFO)

    def filter_data(self) -> List[dict]:
        """Drop images without objects if ``filter_empty_gt`` is set.

        Returns:
            list[dict]: the kept entries of ``self.data_list``.
        """
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        if not self.filter_cfg.get('filter_empty_gt', False):
            return self.data_list
        return [info for info in self.data_list if info['instances']]
