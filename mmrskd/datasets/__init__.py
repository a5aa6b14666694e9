from mmrskd.datasets.dior import DIORDataset, parse_dior_xml
from mmrskd.datasets.dior_r import DIORRDataset
from mmrskd.datasets.dota import DOTADataset, parse_dota_txt
from mmrskd.datasets.hrsc import HRSCDataset, parse_hrsc_xml
from mmrskd.datasets.nwpu_vhr10 import (NWPUVHR10Dataset, make_nwpu_split,
                                        parse_nwpu_txt)
from mmrskd.datasets.utils import InvalidAnnotationError

__all__ = [
    'DOTADataset', 'DIORDataset', 'DIORRDataset', 'HRSCDataset',
    'NWPUVHR10Dataset', 'parse_dota_txt', 'parse_dior_xml', 'parse_hrsc_xml',
    'parse_nwpu_txt', 'make_nwpu_split', 'InvalidAnnotationError'
]
