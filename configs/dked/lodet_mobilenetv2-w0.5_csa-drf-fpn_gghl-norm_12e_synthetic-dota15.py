# The narrow LO-Det student on synthetic DOTA with all 15 DOTA classes (the
# 5-class config's recipe otherwise): with five classes two of them (plane,
# tennis-court) decided each seed's mAP; over fifteen, classes that move in
# both directions average out, as on CSAKD's 20-class DIOR pair.
#   python tools/misc/make_synthetic_data.py --format dota \
#       --out data/synthetic/dota15 --num-images 150 --classes all
_base_ = './lodet_mobilenetv2-w0.5_csa-drf-fpn_gghl-norm_12e_synthetic-dota.py'

data_root = 'data/synthetic/dota15/'
# metainfo None: DOTADataset's own 15 classes
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=None))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=None))
test_dataloader = val_dataloader
model = dict(bbox_head=dict(num_classes=15))
