from mmrskd.evaluation.functional.dota_submission import write_dota_submission
from mmrskd.evaluation.functional.mean_ap import (COCO_IOU_THRS, eval_rs_map,
                                                  format_map_table)
from mmrskd.evaluation.functional.paired_gain import (paired_gain,
                                                      sample_std)
from mmrskd.evaluation.functional.patch_merge import (classwise_nms,
                                                      merge_patch_results,
                                                      parse_patch_name)

__all__ = [
    'write_dota_submission', 'COCO_IOU_THRS', 'eval_rs_map',
    'format_map_table', 'classwise_nms', 'merge_patch_results',
    'parse_patch_name', 'paired_gain', 'sample_std'
]
