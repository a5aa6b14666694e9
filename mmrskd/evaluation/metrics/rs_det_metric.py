"""VOC / COCO mAP for horizontal, rotated and quadrilateral detections."""
import os.path as osp
from collections import OrderedDict
from numbers import Number
from typing import Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement

from mmrskd.datasets.dota import parse_dota_txt
from mmrskd.evaluation.functional import (COCO_IOU_THRS, eval_rs_map,
                                          format_map_table,
                                          merge_patch_results,
                                          write_dota_submission)
from mmrskd.registry import METRICS
from mmrskd.structures import BOX_DIMS, as_box_array, check_box_type
from mmrskd.utils import MMRSKDError

VOC_EVAL_MODES = ('11points', 'area')


@METRICS.register_module()
class RSDetMetric(BaseMetric):
    """Detection mAP for remote-sensing datasets (DOTA, DIOR, HRSC, ...).

    * ``iou_thrs=0.5`` (or a list) gives VOC mAP: ``eval_mode='11points'``
      (VOC07, the DOTA server) or ``'area'`` (VOC12). Keys: ``mAP`` (mean over
      the thresholds) and ``mAP50``, ``mAP75``, ... per threshold.
    * ``iou_thrs='coco'`` gives COCO mAP@[.5:.95] (COCO matching, 101-point
      interpolation; ``eval_mode`` is not used). Keys: ``mAP``, ``mAP50``,
      ``mAP75``.

    Matching rules are documented in
    :mod:`mmrskd.evaluation.functional.mean_ap`. Difficult GT
    (``ignored_instances`` or ``ignore_flag=1``) counts neither as a hit nor
    as a miss.

    DOTA patches: with ``merge_patches=True`` the detections of patches
    named ``P0000__1024__0___0`` (``tools/dataset_converters/dota_split.py``,
    mmrotate's splitter) or ``P0000__1__0___0`` (DOTA_devkit) are shifted
    back onto their full image, de-duplicated by class-wise NMS and, unless
    ``format_only``, evaluated against the full-image labels in
    ``merged_ann_dir`` (raw DOTA ``labelTxt``; objects with difficulty >
    ``merged_diff_thr`` are ignored, as DOTA_devkit ignores difficult ones).

    ``outfile_prefix`` (required with ``format_only``) is a folder that gets
    DOTA result files ``Task1_<class>.txt`` (rbox/qbox) or
    ``Task2_<class>.txt`` (hbox) and their zip, ready for the DOTA server.

    Args:
        box_type (str): 'hbox', 'rbox' or 'qbox'; predictions and GT of other
            types are converted to it. Defaults to 'rbox'.
        iou_thrs (float | Sequence[float] | str): see above. Defaults to 0.5.
        eval_mode (str): '11points' or 'area'. Defaults to '11points'.
        merge_patches (bool): merge DOTA patches first. Defaults to False.
        merged_ann_dir (str, optional): full-image DOTA labelTxt folder.
        merged_diff_thr (int): in ``merged_ann_dir``, objects with a larger
            difficulty are ignored. Defaults to 0.
        format_only (bool): write result files, do not evaluate.
        outfile_prefix (str, optional): folder for the result files.
        nms_iou_thr (float): IoU threshold of the merging NMS. Defaults to
            0.1, as mmrotate's ``DOTAMetric``.
        classwise (bool): log the per-class table. Defaults to True.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): metric name prefix. Defaults to 'rsdet'.

    Examples:
        >>> # DOTA patches: local mAP on the merged val images, DOTA server
        >>> # files for the test set
        >>> val_evaluator = dict(
        ...     type='RSDetMetric', box_type='rbox', merge_patches=True,
        ...     merged_ann_dir='data/DOTA/val/labelTxt/')
        >>> test_evaluator = dict(
        ...     type='RSDetMetric', merge_patches=True, format_only=True,
        ...     outfile_prefix='work_dirs/dota_test/Task1')
        >>> # mAP50 and mAP50-95 of horizontal boxes (DIOR, NWPU VHR-10)
        >>> val_evaluator = dict(
        ...     type='RSDetMetric', box_type='hbox', iou_thrs='coco')
    """

    default_prefix: Optional[str] = 'rsdet'

    def __init__(self,
                 box_type: str = 'rbox',
                 iou_thrs: Union[float, Sequence[float], str] = 0.5,
                 eval_mode: str = '11points',
                 merge_patches: bool = False,
                 merged_ann_dir: Optional[str] = None,
                 merged_diff_thr: int = 0,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 nms_iou_thr: float = 0.1,
                 classwise: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_box_type(box_type, 'RSDetMetric.box_type')
        self.box_type = box_type
        self.iou_thrs, self.mode = self._parse_iou_thrs(iou_thrs, eval_mode)
        if not 0. <= nms_iou_thr <= 1.:
            raise MMRSKDError(f'RSDetMetric.nms_iou_thr={nms_iou_thr} must '
                              'lie in [0, 1]; mmrotate uses 0.1')
        if format_only and not outfile_prefix:
            raise MMRSKDError(
                'RSDetMetric: format_only=True needs outfile_prefix (the '
                'folder for the result files), e.g. '
                "outfile_prefix='work_dirs/dota_test'")
        if merge_patches and not format_only:
            if merged_ann_dir is None:
                raise MMRSKDError(
                    'RSDetMetric: merge_patches=True evaluates the merged '
                    'full images against merged_ann_dir; set merged_ann_dir='
                    "'<DOTA>/val/labelTxt' or format_only=True")
            if not osp.isdir(merged_ann_dir):
                raise MMRSKDError(
                    f'RSDetMetric.merged_ann_dir={merged_ann_dir!r} is not a '
                    'folder; point it at the full-image DOTA labelTxt folder')
        self.merge_patches = merge_patches
        self.merged_ann_dir = merged_ann_dir
        self.merged_diff_thr = merged_diff_thr
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        self.nms_iou_thr = nms_iou_thr
        self.classwise = classwise

    @staticmethod
    def _parse_iou_thrs(iou_thrs, eval_mode):
        """Return (thresholds, mode) with mode '11points', 'area' or 'coco'."""
        if isinstance(iou_thrs, str):
            if iou_thrs != 'coco':
                raise MMRSKDError(
                    f'RSDetMetric.iou_thrs={iou_thrs!r} is not supported; use '
                    "a float, a list of floats or 'coco' (0.50:0.95)")
            return COCO_IOU_THRS.copy(), 'coco'
        if eval_mode not in VOC_EVAL_MODES:
            raise MMRSKDError(
                f'RSDetMetric.eval_mode={eval_mode!r} is not supported; use '
                "'11points' (VOC07, DOTA) or 'area' (VOC12)")
        thrs = [iou_thrs] if isinstance(iou_thrs, Number) else list(iou_thrs)
        if not thrs or not all(
                isinstance(t, Number) and 0 < t <= 1 for t in thrs):
            raise MMRSKDError(
                f'RSDetMetric.iou_thrs={iou_thrs!r} must be a float in (0, 1]'
                ", a non-empty list of them, or 'coco'")
        return np.asarray(thrs, dtype=np.float64), eval_mode

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep the predictions and GT of a batch as numpy arrays.

        Args:
            data_batch (dict): the batch (unused).
            data_samples (Sequence[dict]): data samples (dicts or
                ``DetDataSample``) with ``pred_instances`` (``bboxes``,
                ``scores``, ``labels``) and GT in ``gt_instances`` /
                ``ignored_instances`` or in raw ``instances``.
        """
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            pred = sample['pred_instances']
            self.results.append(
                dict(
                    img_id=self._image_name(sample),
                    bboxes=as_box_array(
                        pred['bboxes'], self.box_type,
                        'pred_instances.bboxes').astype(np.float32),
                    scores=_numpy(pred['scores']).astype(np.float32),
                    labels=_numpy(pred['labels']).astype(np.int64),
                    # merged images take their GT from merged_ann_dir
                    gt=None if self.merge_patches or self.format_only else
                    self._ground_truth(sample)))

    @staticmethod
    def _image_name(sample):
        img_id = sample.get('img_id')
        if isinstance(img_id, str) or not sample.get('img_path'):
            return str(img_id)
        return osp.splitext(osp.basename(sample['img_path']))[0]

    def _ground_truth(self, sample):
        """GT of one sample as arrays, or None when the sample has none."""
        gt = sample.get('gt_instances')
        if gt is not None and 'bboxes' in gt:
            parts = [(gt, False)]
            ignored = sample.get('ignored_instances')
            if ignored is not None and 'bboxes' in ignored:
                parts.append((ignored, True))
            bboxes = [
                as_box_array(p['bboxes'], self.box_type,
                             'gt_instances.bboxes') for p, _ in parts
            ]
            labels = [_numpy(p['labels']).astype(np.int64) for p, _ in parts]
            flags = [np.full(len(lab), ign) for lab, (_, ign) in
                     zip(labels, parts)]
            return dict(
                bboxes=np.concatenate(bboxes).astype(np.float32),
                labels=np.concatenate(labels),
                ignore_flags=np.concatenate(flags).astype(bool))
        instances = sample.get('instances')
        if instances is None:
            return None
        dim = BOX_DIMS[self.box_type]
        by_dim = {}
        for inst in instances:
            by_dim.setdefault(len(inst['bbox']), []).append(inst)
        bboxes, labels, flags = [np.zeros((0, dim), np.float32)], [], []
        for insts in by_dim.values():
            bboxes.append(
                as_box_array([i['bbox'] for i in insts], self.box_type,
                             'instances[].bbox').astype(np.float32))
            labels += [int(i['bbox_label']) for i in insts]
            flags += [bool(i.get('ignore_flag', 0)) for i in insts]
        return dict(
            bboxes=np.concatenate(bboxes),
            labels=np.asarray(labels, dtype=np.int64),
            ignore_flags=np.asarray(flags, dtype=bool))

    def _classes(self):
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            raise MMRSKDError(
                "RSDetMetric: dataset_meta has no 'classes'; the runner sets "
                'it from the dataset, when calling the metric yourself set '
                'metric.dataset_meta = dict(classes=(...))')
        return list(classes)

    def _merged_ground_truth(self, name, label_of):
        """Full-image GT of image ``name`` from ``merged_ann_dir``; objects
        of classes outside ``dataset_meta['classes']`` are dropped."""
        path = osp.join(self.merged_ann_dir, name + '.txt')
        if not osp.isfile(path):
            raise MMRSKDError(
                f'RSDetMetric: {path} not found; merged_ann_dir must hold '
                'the full-image label file of every evaluated image')
        polys, names, difficulties = parse_dota_txt(path)
        keep = np.asarray([n in label_of for n in names], dtype=bool)
        return dict(
            bboxes=as_box_array(polys[keep], self.box_type, path),
            labels=np.asarray([label_of[n] for n in names if n in label_of],
                              dtype=np.int64),
            ignore_flags=difficulties[keep] > self.merged_diff_thr)

    def compute_metrics(self, results: list) -> dict:
        """Merge, write and evaluate the collected results.

        Args:
            results (list[dict]): what :meth:`process` kept, all ranks.

        Returns:
            dict: ``mAP`` and per-threshold ``mAP50``... (none with
            ``format_only``).
        """
        logger = MMLogger.get_current_instance()
        classes = self._classes()
        preds = [{k: r[k]
                  for k in ('img_id', 'bboxes', 'scores', 'labels')}
                 for r in results]
        if self.merge_patches:
            preds = merge_patch_results(preds, self.box_type,
                                        self.nms_iou_thr)
            logger.info(f'RSDetMetric: merged {len(results)} patches into '
                        f'{len(preds)} full images')
        if self.outfile_prefix:
            zip_path = write_dota_submission(preds, classes, self.box_type,
                                             self.outfile_prefix)
            logger.info(f'RSDetMetric: result files written to {zip_path}')
        if self.format_only:
            return OrderedDict()

        if self.merge_patches:
            label_of = {name: label for label, name in enumerate(classes)}
            gts = [self._merged_ground_truth(p['img_id'], label_of)
                   for p in preds]
        else:
            gts = [r['gt'] for r in results]
            if any(gt is None for gt in gts):
                raise MMRSKDError(
                    'RSDetMetric: data samples carry no ground truth '
                    '(gt_instances or instances); load annotations in the '
                    'test pipeline, or set format_only=True')
        result = eval_rs_map(preds, gts, len(classes), self.box_type,
                             self.iou_thrs, self.mode)
        if not result['num_gts'].any():
            logger.warning('RSDetMetric: no ground-truth object in the '
                           'evaluated images; mAP is 0')
        if self.classwise:
            table_thrs = (0.5, 0.75) if self.mode == 'coco' else None
            logger.info('\n' + format_map_table(result, classes, table_thrs))

        metrics = OrderedDict(mAP=float(result['mean_ap'].mean()))
        report = (0.5, 0.75) if self.mode == 'coco' else self.iou_thrs
        for thr in report:
            col = int(np.argmin(np.abs(self.iou_thrs - thr)))
            metrics[f'mAP{int(round(thr * 100))}'] = float(
                result['mean_ap'][col])
        return metrics


def _numpy(values):
    """Tensor or array-like to a numpy array."""
    if hasattr(values, 'detach'):
        values = values.detach().cpu().numpy()
    return np.asarray(values)
