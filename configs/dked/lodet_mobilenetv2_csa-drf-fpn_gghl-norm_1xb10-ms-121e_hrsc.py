# LO-Det (LODet_GGHL) on HRSC2016 with GGHL's input normalisation (pixels /
# 255, as in the GGHL repository that holds LODet_GGHL): the student of the
# DKED HRSC2016 config and its baseline. The distiller requires teacher and
# student to see identically normalised inputs.
_base_ = '../lodet/lodet_mobilenetv2_csa-drf-fpn_1xb10-ms-121e_hrsc.py'

model = dict(
    data_preprocessor=dict(mean=[0, 0, 0], std=[255., 255., 255.]))
